/*
 * dest.h - the destination of a postback: the scheme, host and port of its
 * filled URL, and a short id for it that names its keys in Redis (keys.h).
 *
 *   "HTTP://Example.COM/x?y"   ->  "http://example.com:80"
 *   "https://[::1]:8443/"      ->  "https://[::1]:8443"
 *
 * It is what libcurl will connect to: the URL's scheme and authority as
 * libcurl parses them (curl_url), the host in lower case without a
 * trailing dot, the port always, so that one partner spelled differently
 * ("HOST.", ":0080", "0x7f.1") is one destination, with one breaker and
 * one rate.
 *
 * The id is 16 hex digits of FNV-1a 64 over that text: collisions between
 * a cluster's few thousand destinations are practically impossible (one in
 * millions for 10,000), and one would only make two partners share a queue
 * and a breaker, never lose anything.
 */
#ifndef PB_DEST_H
#define PB_DEST_H

#include <stddef.h>

#define PB_DEST_MAX 300    /* "https://" + a 255-byte host + ":65535" */
#define PB_DEST_ID_LEN 16

typedef struct pb_dest {
	char name[PB_DEST_MAX];           /* scheme://host:port */
	char id[PB_DEST_ID_LEN + 1];
} pb_dest;

/*
 * The destination of url[0..n) (only its "scheme://authority" is read).
 * PB_OK; PB_ERR_FORMAT when libcurl refuses it, its scheme is not http or
 * https, it has userinfo ("user@", which may hide the real host), or it
 * does not fit; PB_ERR_NOMEM.
 */
int pb_dest_of(pb_dest *d, const char *url, size_t n);
/*
 * pb_dest_of with a memory of the last answers, for one thread's use: the
 * answer depends only on the URL's "scheme://authority", which a partner's
 * postbacks share, and libcurl's parse costs an allocation a part. A slot
 * per hash of that prefix, compared byte for byte: a hit is exact.
 */
#define PB_DEST_CACHE_SLOTS 64
typedef struct pb_dest_cache {
	struct {
		char prefix[PB_DEST_MAX];
		size_t len;     /* 0: empty */
		int rc;         /* PB_OK or PB_ERR_FORMAT */
		pb_dest d;
	} slot[PB_DEST_CACHE_SLOTS];
	unsigned long hits, misses;
} pb_dest_cache;

int pb_dest_of_cached(pb_dest_cache *c, pb_dest *d, const char *url, size_t n);
/* The length of url's "scheme://authority" prefix; 0 when it has none. */
size_t pb_dest_prefix_len(const char *url, size_t n);
/* 1 if s[0..n) is a destination id: PB_DEST_ID_LEN lower-case hex digits. */
int pb_dest_id_valid(const char *s, size_t n);

#endif
