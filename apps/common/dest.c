#include "dest.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

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

int pb_dest_of(pb_dest *d, const char *url, size_t n)
{
	size_t end = pb_dest_prefix_len(url, n), scheme = 0, i, k = 0;
	const char *host, *colon = NULL;
	size_t host_len;
	uint64_t h = 14695981039346656037ULL;
	int https;

	memset(d, 0, sizeof(*d));
	if (end == 0)
		return PB_ERR_FORMAT;
	while (url[scheme] != ':')
		scheme++;
	host = url + scheme + 3;
	host_len = end - (scheme + 3);
	/* Userinfo is not part of the destination (and the agent refuses it). */
	for (i = host_len; i > 0; i--)
		if (host[i - 1] == '@') {
			host += i;
			host_len -= i;
			break;
		}
	/* A port is after the last ':' that follows any IPv6 ']'. */
	for (i = host_len; i > 0 && host[i - 1] != ']'; i--)
		if (host[i - 1] == ':') {
			colon = host + i - 1;
			break;
		}
	if (host_len == 0 || scheme + 3 + host_len + 7 >= sizeof(d->name))
		return PB_ERR_FORMAT;
	https = scheme == 5 && lower(url[0]) == 'h' && lower(url[4]) == 's';
	for (i = 0; i < scheme + 3; i++)
		d->name[k++] = lower(url[i]);
	for (i = 0; host + i < (colon ? colon : host + host_len); i++)
		d->name[k++] = lower(host[i]);
	if (colon && colon + 1 < host + host_len)
		for (i = (size_t)(colon - host); i < host_len; i++)
			d->name[k++] = host[i];
	else
		k += (size_t)snprintf(d->name + k, sizeof(d->name) - k, ":%d",
				      https ? 443 : 80);
	d->name[k] = '\0';
	for (i = 0; i < k; i++) {
		h ^= (unsigned char)d->name[i];
		h *= 1099511628211ULL;
	}
	snprintf(d->id, sizeof(d->id), "%016llx", (unsigned long long)h);
	return PB_OK;
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
