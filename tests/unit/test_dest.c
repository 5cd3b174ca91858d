/* The destination of a URL: data-driven cases, and the id's properties. */
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

void unit_tests(void)
{
	names();
	ids();
	refusals();
}
