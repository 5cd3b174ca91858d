#include "dest.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "pb.h"

size_t pb_dest_prefix_len(const char *url, size_t n)
{
	size_t i = 0;

	while (i < n && url[i] != ':' && url[i] != '/')
		i++;
	if (i == 0 || i + 3 > n || url[i] != ':' || url[i + 1] != '/' ||
	    url[i + 2] != '/')
		return 0;
	for (i += 3; i < n; i++)
		if (url[i] == '/' || url[i] == '?' || url[i] == '#')
			break;
	return i;
}

/* ASCII lower case, whatever the locale. */
static char lower(char c)
{
	unsigned char u = (unsigned char)c;

	if (u >= (unsigned char)'A' && u <= (unsigned char)'Z')
		u = (unsigned char)(u + ('a' - 'A'));
	return (char)u;
}

/* url's "scheme://authority/" as libcurl parses it into u: PB_OK, or
 * PB_ERR_FORMAT for what it refuses, another scheme, or userinfo. */
static int parse(CURLU *u, const char *url, size_t n)
{
	size_t end = pb_dest_prefix_len(url, n);
	char prefix[PB_DEST_MAX + 16];
	char *user = NULL, *pass = NULL;
	int rc = PB_OK;

	/* Userinfo is refused: libcurl would send it, and a URL may hide a
	 * host behind it ("http://a@b@host/"). */
	if (end == 0 || end + 2 > sizeof(prefix) || memchr(url, '@', end))
		return PB_ERR_FORMAT;
	memcpy(prefix, url, end);
	prefix[end] = '/', prefix[end + 1] = '\0';
	if (curl_url_set(u, CURLUPART_URL, prefix, 0) != CURLUE_OK)
		return PB_ERR_FORMAT;
	if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PASSWORD, &pass, 0) == CURLUE_OK)
		rc = PB_ERR_FORMAT;
	curl_free(user);
	curl_free(pass);
	return rc;
}

/* d->name from u: "scheme://host:port", the host in lower case without a
 * trailing dot, the port always (libcurl writes IPv4 addresses in one
 * form, and drops a port's leading zeros). */
static int name_of(pb_dest *d, CURLU *u)
{
	char *scheme = NULL, *host = NULL, *port = NULL;
	size_t i, hn;
	int rc = PB_ERR_FORMAT, k;

	if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK)
		goto out;
	if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)
		goto out;
	hn = strlen(host);
	if (hn > 1 && host[hn - 1] == '.')
		host[--hn] = '\0';
	for (i = 0; i < hn; i++)
		host[i] = lower(host[i]);
	if (hn == 0 || strcmp(host, ".") == 0)
		goto out;
	k = snprintf(d->name, sizeof(d->name), "%s://%s:%s", scheme, host, port);
	if (k > 0 && (size_t)k < sizeof(d->name))
		rc = PB_OK;
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	return rc;
}

int pb_dest_of(pb_dest *d, const char *url, size_t n)
{
	CURLU *u = curl_url();
	uint64_t h = 14695981039346656037ULL;
	size_t i;
	int rc;

	memset(d, 0, sizeof(*d));
	if (u == NULL)
		return PB_ERR_NOMEM;
	rc = parse(u, url, n);
	if (rc == PB_OK)
		rc = name_of(d, u);
	curl_url_cleanup(u);
	if (rc != PB_OK) {
		memset(d, 0, sizeof(*d));
		return rc;
	}
	for (i = 0; d->name[i]; i++) {
		h ^= (unsigned char)d->name[i];
		h *= 1099511628211ULL;
	}
	snprintf(d->id, sizeof(d->id), "%016llx", (unsigned long long)h);
	return PB_OK;
}

int pb_dest_of_cached(pb_dest_cache *c, pb_dest *d, const char *url, size_t n)
{
	size_t end = pb_dest_prefix_len(url, n), i;
	uint64_t h = 14695981039346656037ULL;
	int rc;

	if (end == 0 || end >= sizeof(c->slot[0].prefix))
		return pb_dest_of(d, url, n);
	for (i = 0; i < end; i++) {
		h ^= (unsigned char)url[i];
		h *= 1099511628211ULL;
	}
	i = (size_t)(h % PB_DEST_CACHE_SLOTS);
	if (c->slot[i].len == end && memcmp(c->slot[i].prefix, url, end) == 0) {
		c->hits++;
		*d = c->slot[i].d;
		return c->slot[i].rc;
	}
	c->misses++;
	rc = pb_dest_of(d, url, end);
	if (rc == PB_OK || rc == PB_ERR_FORMAT) {
		memcpy(c->slot[i].prefix, url, end);
		c->slot[i].len = end;
		c->slot[i].rc = rc;
		c->slot[i].d = *d;
	}
	return rc;
}

int pb_dest_id_valid(const char *s, size_t n)
{
	size_t i;

	if (n != PB_DEST_ID_LEN)
		return 0;
	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}
