#include "pb.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

int64_t pb_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t pb_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t pb_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void pb_sleep_ms(int64_t ms, const atomic_int *stop)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		if (stop && *stop)
			return;
}

int pb_random_bytes(void *buf, size_t n)
{
	unsigned char *p = buf;

	while (n > 0) {
		ssize_t r = getrandom(p, n, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return PB_ERR_IO;
		}
		p += r;
		n -= (size_t)r;
	}
	return PB_OK;
}

uint64_t pb_random_below(uint64_t bound)
{
	uint64_t x, limit = UINT64_MAX - UINT64_MAX % bound;

	/* Rejection sampling: no modulo bias. Falls back to time on failure. */
	do {
		if (pb_random_bytes(&x, sizeof(x)) != PB_OK)
			x = (uint64_t)pb_now_ms() * 6364136223846793005ULL;
	} while (x >= limit);
	return x % bound;
}

int pb_strlcpy(char *dst, const char *src, size_t dstsize)
{
	size_t n = strlen(src);

	if (n >= dstsize) {
		memcpy(dst, src, dstsize - 1);
		dst[dstsize - 1] = '\0';
		return PB_ERR_LIMIT;
	}
	memcpy(dst, src, n + 1);
	return PB_OK;
}

int pb_token_valid(const char *s, size_t n, size_t max, const char *punct)
{
	size_t i;

	if (n == 0 || n > max)
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
		      (c >= 'A' && c <= 'Z') || (c != '\0' && strchr(punct, c))))
			return 0;
	}
	return 1;
}

int pb_parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long n;

	/* strtol skips leading space and takes a sign alone as 0: refuse both. */
	if (s == NULL || !(isdigit((unsigned char)s[0]) ||
			   (s[0] == '-' && isdigit((unsigned char)s[1]))))
		return PB_ERR_FORMAT;
	errno = 0;
	n = strtol(s, &end, 10);
	if (*end != '\0')
		return PB_ERR_FORMAT;
	if (errno == ERANGE || n < min || n > max)
		return PB_ERR_LIMIT;
	*out = n;
	return PB_OK;
}

void pb_block_signals(void *set)
{
	sigset_t *s = set;

	sigemptyset(s);
	sigaddset(s, SIGTERM);
	sigaddset(s, SIGINT);
	sigaddset(s, SIGHUP);
	pthread_sigmask(SIG_BLOCK, s, NULL);
	signal(SIGPIPE, SIG_IGN);
}

int pb_info_field(const char *info, const char *name, long *out)
{
	size_t n = strlen(name);
	const char *p = info;
	char value[32];

	for (; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		size_t len;

		if (strncmp(p, name, n) != 0 || p[n] != ':')
			continue;
		p += n + 1;
		len = strcspn(p, "\r\n");
		if (len >= sizeof(value))
			return PB_ERR_LIMIT;
		memcpy(value, p, len);
		value[len] = '\0';
		return pb_parse_long(value, 0, LONG_MAX, out);
	}
	return PB_ERR_NOTFOUND;
}

int pb_base62(char *out, size_t n, uint64_t v, size_t width)
{
	static const char digits[] =
		"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
	char tmp[16];
	size_t len = 0, i;

	do {
		tmp[len++] = digits[v % 62];
		v /= 62;
	} while (v > 0);
	while (len < width && len < sizeof(tmp))
		tmp[len++] = '0';
	if (len >= n || len < width)
		return PB_ERR_LIMIT;
	for (i = 0; i < len; i++)
		out[i] = tmp[len - 1 - i];
	out[len] = '\0';
	return PB_OK;
}
