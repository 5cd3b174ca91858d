/*
 * log.h - operational log lines on standard error (the journal or the
 * supervisor's log file catches them), and the escaping that keeps any
 * foreign text on one line.
 *
 *   2026-11-24T05:30:00.123Z ingest[1234] warn: redis 127.0.0.1:6390: READONLY ...
 */
#ifndef PB_LOG_H
#define PB_LOG_H

#include <stddef.h>

#include "buf.h"

enum pb_log_level { PB_LOG_DEBUG, PB_LOG_INFO, PB_LOG_WARN, PB_LOG_ERROR };

/* Set the program name and the lowest level written ("debug".."error"). */
int pb_log_init(const char *prog, const char *level);
void pb_log(enum pb_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define pb_debug(...) pb_log(PB_LOG_DEBUG, __VA_ARGS__)
#define pb_info(...) pb_log(PB_LOG_INFO, __VA_ARGS__)
#define pb_warn(...) pb_log(PB_LOG_WARN, __VA_ARGS__)
#define pb_error(...) pb_log(PB_LOG_ERROR, __VA_ARGS__)

/* "2026-11-24T05:30:00.123Z" for a wall-clock time in ms; out >= 25 bytes. */
void pb_format_utc_ms(char *out, size_t outsize, long long wall_ms);

/*
 * Append s[0..n) escaped for a one-line log field: backslash, double quote
 * and every byte outside printable ASCII become \\, \", \n, \r, \t or \xHH.
 * At most max input bytes are taken; "..." marks a cut.
 */
int pb_log_escape(pb_buf *out, const char *s, size_t n, size_t max);

/*
 * The same for the inside of a JSON string: \\, \", \n, \r, \t, and every
 * other byte outside printable ASCII as \u00XX (the byte, as the text need
 * not be UTF-8), so that the line is valid JSON whatever s holds.
 */
int pb_json_escape(pb_buf *out, const char *s, size_t n, size_t max);

/*
 * url[0..n) with the value of each query parameter as "*" (a parameter
 * without "=" as "*" too) and a fragment as "#*": the names stay, so the
 * line still says what was sent. Nothing after the path is kept verbatim.
 */
int pb_redact_query(pb_buf *out, const char *url, size_t n);

#endif
