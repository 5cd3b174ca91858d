/* Standard Webhooks v1 signatures (apps/common/sign.h): the specification's
 * own example, secrets read back, and malformed secrets refused. */
#include <string.h>

#include "pb.h"
#include "sign.h"
#include "unit.h"

/* The example of the Standard Webhooks specification and its reference
 * libraries' tests. */
static void the_spec_example(void)
{
	static const char body[] = "{\"test\": 2432232314}";
	pb_sign_secret sec;
	char sig[PB_SIGN_B64_LEN + 4];

	CHECK(pb_sign_secret_read(&sec, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", 38) == PB_OK,
	      "read");
	CHECK(sec.len == 24, "%zu bytes", sec.len);
	pb_sign_v1(sig, &sec, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body,
		   sizeof(body) - 1);
	CHECK_STR(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
	/* Another id, time or body: another signature. */
	pb_sign_v1(sig, &sec, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265331, body,
		   sizeof(body) - 1);
	CHECK(strcmp(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=") != 0, "%s", sig);
}

static void new_secrets_read_back(void)
{
	char text[PB_SIGN_SECRET_TEXT_MAX + 1], other[PB_SIGN_SECRET_TEXT_MAX + 1];
	pb_sign_secret sec;

	CHECK(pb_sign_secret_new(text) == PB_OK && pb_sign_secret_new(other) == PB_OK, "new");
	CHECK(strncmp(text, "whsec_", 6) == 0 && strlen(text) == 6 + 44, "%s", text);
	CHECK(strcmp(text, other) != 0, "two secrets alike");
	CHECK(pb_sign_secret_read(&sec, text, strlen(text)) == PB_OK, "%s", text);
	CHECK(sec.len == PB_SIGN_SECRET_BYTES, "%zu", sec.len);
}

static void malformed_secrets_refused(void)
{
	static const char *bad[] = {
		"", "whsec_", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS",
		"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa w", "whsec_====", "whsec_AB=C",
		"whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	};
	pb_sign_secret sec;
	size_t i;

	for (i = 0; i < PB_ARRAY_LEN(bad); i++)
		CHECK(pb_sign_secret_read(&sec, bad[i], strlen(bad[i])) == PB_ERR_FORMAT,
		      "'%s'", bad[i]);
	CHECK(pb_sign_secret_read(&sec, "whsec_AQ==", 10) == PB_OK && sec.len == 1 &&
	      sec.key[0] == 1, "one byte");
}

void unit_tests(void)
{
	the_spec_example();
	new_secrets_read_back();
	malformed_secrets_refused();
}
