/* The destination of a URL: data-driven cases, and the id's properties. */
#include <stdio.h>
#include <string.h>

#include "dest.h"
#include "pb.h"
#include "unit.h"

static void names(void)
{
	static const struct { const char *url, *name; } cases[] = {
		{ "http://example.com/x?y=1", "http://example.com:80" },
		{ "HTTP://Example.COM", "http://example.com:80" },
		{ "https://example.com/", "https://example.com:443" },
		{ "https://example.com:8443/p", "https://example.com:8443" },
		{ "http://127.0.0.1:9/", "http://127.0.0.1:9" },
		{ "http://[::1]:8080/a", "http://[::1]:8080" },
		{ "http://[::1]/a", "http://[::1]:80" },
		/* One partner however its address is spelled. */
		{ "http://Host.Example./x", "http://host.example:80" },
		{ "http://host.example:0080/", "http://host.example:80" },
		{ "https://host.example:443/", "https://host.example:443" },
		{ "http://0x7f.1/", "http://127.0.0.1:80" },
		{ "http://2130706433:81/", "http://127.0.0.1:81" },
		{ "http://[::FFFF:127.0.0.1]/", "http://[::ffff:127.0.0.1]:80" },
		{ "http://ex%41mple.test/", "http://example.test:80" },
		{ "http://host?q", "http://host:80" },
		{ "http://host#f", "http://host:80" },
		{ "http://host:/x", "http://host:80" },
	};
	size_t i;
	pb_dest d;

	for (i = 0; i < PB_ARRAY_LEN(cases); i++) {
		CHECK(pb_dest_of(&d, cases[i].url, strlen(cases[i].url)) == PB_OK,
		      "parse %s", cases[i].url);
		CHECK_STR(d.name, cases[i].name);
		CHECK(pb_dest_id_valid(d.id, strlen(d.id)), "id of %s", cases[i].url);
	}
}

static void ids(void)
{
	pb_dest a, b, c;

	pb_dest_of(&a, "http://a.test/x", 15);
	pb_dest_of(&b, "HTTP://A.test:80/y?z", 20);
	pb_dest_of(&c, "http://a.test:81/x", 18);
	CHECK(strcmp(a.id, b.id) == 0, "same destination, same id");
	CHECK(strcmp(a.id, c.id) != 0, "another port, another id");
	CHECK(!pb_dest_id_valid("0123456789abcdeF", 16) &&
	      !pb_dest_id_valid("0123456789abcde", 15), "id form");
}

static void refusals(void)
{
	static const char *bad[] = {
		"", "example.com/x", "://x", "http:/x", "http://", "http:///path",
		/* Userinfo: libcurl would send it, and it can hide the host. */
		"http://user:pw@host:81/", "http://a@b@victim.example/",
		"http://@victim.example/",
		/* What libcurl refuses, or would not fetch. */
		"http://exa mple/", "http://x:99999/", "http://:80/", "ftp://x/",
		"http://{h}/", "http://./", "http://[::1/",
	};
	char longhost[400];
	size_t i;
	pb_dest d;

	for (i = 0; i < PB_ARRAY_LEN(bad); i++)
		CHECK(pb_dest_of(&d, bad[i], strlen(bad[i])) == PB_ERR_FORMAT,
		      "refuse '%s'", bad[i]);
	memcpy(longhost, "http://", 7);
	memset(longhost + 7, 'h', sizeof(longhost) - 8);
	longhost[sizeof(longhost) - 1] = '\0';
	CHECK(pb_dest_of(&d, longhost, strlen(longhost)) == PB_ERR_FORMAT,
	      "a host that does not fit");
	CHECK(pb_dest_prefix_len("http://h/{x}", 12) == 8, "prefix");
	CHECK(pb_dest_prefix_len("http://{host}/x", 15) == 13, "prefix with a key");
}

/* The cache answers exactly as pb_dest_of, for hits, misses, refusals and
 * more prefixes than it has slots (each slot replaced in turn). */
static void cached(void)
{
	static const char *const urls[] = {
		"http://example.com/x?y=1", "HTTP://Example.COM", "https://example.com:8443/p",
		"http://a@b@victim.example/", "ftp://example.com/", "http://host?q",
		"http://0x7f.1/", "http://[::1]/a", "nothing", "",
	};
	static pb_dest_cache c; /* 40 KB: not on the stack */
	char url[64];
	size_t round, i;

	memset(&c, 0, sizeof(c));
	for (round = 0; round < 3; round++) {
		for (i = 0; i < PB_ARRAY_LEN(urls); i++) {
			pb_dest a, b;
			int ra = pb_dest_of(&a, urls[i], strlen(urls[i]));
			int rb = pb_dest_of_cached(&c, &b, urls[i], strlen(urls[i]));

			CHECK(ra == rb, "%s: %d, cached %d", urls[i], ra, rb);
			CHECK(memcmp(&a, &b, sizeof(a)) == 0, "%s: the same destination", urls[i]);
		}
		for (i = 0; i < (size_t)PB_DEST_CACHE_SLOTS * 3; i++) {
			pb_dest a, b;

			snprintf(url, sizeof(url), "http://host%zu.example:%zu/p?i=%zu", i, 80 + i, i);
			CHECK(pb_dest_of(&a, url, strlen(url)) == PB_OK, "%s", url);
			CHECK(pb_dest_of_cached(&c, &b, url, strlen(url)) == PB_OK, "%s cached", url);
			CHECK_STR(b.name, a.name);
			CHECK_STR(b.id, a.id);
		}
	}
	CHECK(c.hits > 0 && c.misses > 0, "hits %lu, misses %lu", c.hits, c.misses);
	/* The same partner, another path and query: a hit. */
	{
		pb_dest d;
		unsigned long hits = c.hits;

		CHECK(pb_dest_of_cached(&c, &d, "http://example.com/a", 20) == PB_OK, "hit");
		CHECK(pb_dest_of_cached(&c, &d, "http://example.com/b?c", 22) == PB_OK, "hit");
		CHECK(c.hits >= hits + 1, "hits %lu after %lu", c.hits, hits);
		CHECK_STR(d.name, "http://example.com:80");
	}
}

void unit_tests(void)
{
	names();
	ids();
	refusals();
	cached();
}
