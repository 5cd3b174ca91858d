/*
 * pb.h - error codes and small helpers shared by every postback program.
 *
 * Functions return PB_OK (0) or a negative PB_ERR_* code; contexts that can
 * fail in more interesting ways also carry an errstr naming what failed.
 */
#ifndef PB_H
#define PB_H

#include <stddef.h>
#include <stdatomic.h>
#include <stdint.h>

#define PB_VERSION "0.2.0"

enum pb_err {
	PB_OK = 0,
	PB_ERR_NOMEM = -1,   /* allocation failed */
	PB_ERR_LIMIT = -2,   /* a configured or built-in size bound was hit */
	PB_ERR_FORMAT = -3,  /* input is not in the expected format */
	PB_ERR_IO = -4,      /* connection or file I/O failed */
	PB_ERR_REPLY = -5,   /* the peer answered with an error */
	PB_ERR_TIMEOUT = -6, /* a deadline passed */
	PB_ERR_FULL = -7,    /* the queue is at MAX_QUEUE_SIZE */
	PB_ERR_NOTFOUND = -8,
};

#define PB_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Milliseconds on the monotonic clock: for timeouts and durations. */
int64_t pb_now_ms(void);
/* Microseconds on the same clock: for the metrics' round trips. */
int64_t pb_now_us(void);
/* Milliseconds since the epoch: for timestamps and retry due times. */
int64_t pb_wall_ms(void);
/* Sleep for ms milliseconds (restarts on EINTR unless *stop becomes set). */
void pb_sleep_ms(int64_t ms, const atomic_int *stop);
/* Fill buf with n random bytes from the kernel. */
/*
 * v in base 62 (0-9, A-Z, a-z), most significant digit first, at least
 * width digits (zeros ahead), into out[0..n): PB_OK, or PB_ERR_LIMIT when
 * it does not fit. Short ids: 64 bits in 11 characters, where hex takes 16.
 */
int pb_base62(char *out, size_t n, uint64_t v, size_t width);
int pb_random_bytes(void *buf, size_t n);
/* A uniformly distributed random number in [0, bound). bound > 0. */
uint64_t pb_random_below(uint64_t bound);
/*
 * Block SIGTERM, SIGINT and SIGHUP (into *set) in this thread and every
 * thread it starts after, for one thread to take with sigwait(); ignore
 * SIGPIPE (a peer that went away is an error return, not a death).
 */
void pb_block_signals(void *set);
/*
 * The one number parser: a whole decimal number in [min, max] and nothing
 * else (no sign-only, no trailing text, no overflow). PB_OK, PB_ERR_FORMAT
 * when s is not such a number, PB_ERR_LIMIT when it is outside the bounds;
 * *out is set only on PB_OK.
 */
int pb_parse_long(const char *s, long min, long max, long *out);
/*
 * The number of field name in Redis INFO text ("name:value" lines), through
 * pb_parse_long: PB_OK, PB_ERR_NOTFOUND when there is no such line, or as
 * pb_parse_long when its value is not a number.
 */
int pb_info_field(const char *info, const char *name, long *out);
/* Bounded copy that always terminates dst (dstsize > 0); PB_ERR_LIMIT if cut. */
int pb_strlcpy(char *dst, const char *src, size_t dstsize);
/*
 * The one name validator: 1 if s[0..n) is 1 to max characters, each an
 * ASCII letter, a digit, or one of punct (a C string; never NUL). Ids,
 * client names and the like go into Redis keys, headers and log lines as
 * they are, so each is a token of a few known characters.
 */
int pb_token_valid(const char *s, size_t n, size_t max, const char *punct);

#endif
