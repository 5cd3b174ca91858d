#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pb.h"

static const char *log_prog = "pb";
static enum pb_log_level log_min = PB_LOG_INFO;
static const char *level_names[] = { "debug", "info", "warn", "error" };
/* syslog priorities of the levels, for the journal: debug, info, warning, err */
static const int level_priority[] = { 7, 6, 4, 3 };
static int to_journal;

/*
 * Is standard error the journal? systemd says so in JOURNAL_STREAM
 * ("device:inode" of the stream it connected); a redirected stderr keeps
 * the variable but not the inode. Then each line starts with "<priority>"
 * (journald's SyslogLevelPrefix) and carries no time or pid: the journal
 * records both.
 */
static int stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	char *end;
	struct stat st;

	if (js == NULL || fstat(STDERR_FILENO, &st) != 0)
		return 0;
	dev = strtoull(js, &end, 10);
	if (end == js || *end != ':')
		return 0;
	ino = strtoull(end + 1, &end, 10);
	return *end == '\0' && (unsigned long long)st.st_dev == dev &&
	       (unsigned long long)st.st_ino == ino;
}

int pb_log_init(const char *prog, const char *level)
{
	size_t i;

	log_prog = prog;
	to_journal = stderr_is_journal();
	for (i = 0; i < PB_ARRAY_LEN(level_names); i++) {
		if (strcmp(level, level_names[i]) == 0) {
			log_min = (enum pb_log_level)i;
			return PB_OK;
		}
	}
	return PB_ERR_FORMAT;
}

void pb_format_utc_ms(char *out, size_t outsize, long long wall_ms)
{
	time_t secs = (time_t)(wall_ms / 1000);
	struct tm tm;
	char day[24];

	gmtime_r(&secs, &tm);
	if (strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
		day[0] = '\0';
	snprintf(out, outsize, "%.20s.%03uZ", day, (unsigned)(wall_ms % 1000));
}

void pb_log(enum pb_log_level level, const char *fmt, ...)
{
	char ts[32], msg[2048];
	va_list ap;

	if (level < log_min)
		return;
	pb_format_utc_ms(ts, sizeof(ts), pb_wall_ms());
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* One fprintf a line: stdio locks the stream, so threads don't mix. */
	if (to_journal)
		fprintf(stderr, "<%d>%s: %s\n", level_priority[level], level_names[level], msg);
	else
		fprintf(stderr, "%s %s[%d] %s: %s\n", ts, log_prog, (int)getpid(),
			level_names[level], msg);
}

/*
 * The one escaping loop of both forms: backslash, double quote, \n, \r and
 * \t by their letter; any other byte outside printable ASCII as hex after
 * byte_prefix ("\\x" for a log field, "\\u00" inside a JSON string).
 */
static int escape(pb_buf *out, const char *s, size_t n, size_t max, const char *byte_prefix)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, take = n < max ? n : max;
	int rc = PB_OK;

	for (i = 0; i < take && rc == PB_OK; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[2] = { '\\', 0 };

		switch (c) {
		case '\\': esc[1] = '\\'; break;
		case '"': esc[1] = '"'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		default:
			if (c >= 0x20 && c < 0x7f) {
				rc = pb_buf_putc(out, (char)c);
				continue;
			}
			rc = pb_buf_puts(out, byte_prefix);
			if (rc == PB_OK)
				rc = pb_buf_putc(out, hex[c >> 4]);
			if (rc == PB_OK)
				rc = pb_buf_putc(out, hex[c & 15]);
			continue;
		}
		rc = pb_buf_append(out, esc, sizeof(esc));
	}
	if (rc == PB_OK && take < n)
		rc = pb_buf_puts(out, "...");
	return rc;
}

int pb_log_escape(pb_buf *out, const char *s, size_t n, size_t max)
{
	return escape(out, s, n, max, "\\x");
}

/* A byte, not a character: the text may not be UTF-8. */
int pb_json_escape(pb_buf *out, const char *s, size_t n, size_t max)
{
	return escape(out, s, n, max, "\\u00");
}

int pb_redact_query(pb_buf *out, const char *url, size_t n)
{
	size_t i = 0, q;
	int rc;

	if (n == 0)
		return PB_OK;
	for (q = 0; q < n && url[q] != '?' && url[q] != '#'; q++)
		;
	rc = pb_buf_append(out, url, q);
	i = q;
	while (rc == PB_OK && i < n) {
		size_t end, eq;

		if (url[i] == '#')
			return pb_buf_puts(out, "#*");
		/* url[i] is '?' or '&': one parameter up to the next '&' or '#'. */
		rc = pb_buf_putc(out, url[i++]);
		for (end = i; end < n && url[end] != '&' && url[end] != '#'; end++)
			;
		for (eq = i; eq < end && url[eq] != '='; eq++)
			;
		if (rc == PB_OK && eq < end)
			rc = pb_buf_append(out, url + i, eq + 1 - i);
		if (rc == PB_OK && end > i)
			rc = pb_buf_putc(out, '*');
		i = end;
	}
	return rc;
}
