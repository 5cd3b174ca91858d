/*
 * sign.h - signed deliveries, as Standard Webhooks v1 has them
 * (https://www.standardwebhooks.com): each attempt carries
 *
 *     webhook-id: <the postback's id, the same on every attempt>
 *     webhook-timestamp: <the attempt's time, seconds since the epoch>
 *     webhook-signature: v1,<base64 HMAC-SHA256> [v1,<...> ...]
 *
 * signed over "<id>.<timestamp>.<body>" (a GET's body is empty) with each
 * of the client's secrets: one, or two while a rotation runs. A secret is
 * written "whsec_" and the base64 of its bytes.
 */
#ifndef PB_SIGN_H
#define PB_SIGN_H

#include <stddef.h>
#include <stdint.h>

#define PB_SIGN_SECRET_BYTES 32   /* what pbctl makes */
#define PB_SIGN_SECRET_MAX 64     /* bytes of a secret read back, at most */
#define PB_SIGN_SECRET_TEXT_MAX 100 /* "whsec_" and base64 of up to 64 bytes */
#define PB_SIGN_B64_LEN 44        /* base64 of an HMAC-SHA256 */
#define PB_SIGN_MAX_SECRETS 2     /* a client's secrets at once */

typedef struct pb_sign_secret {
	unsigned char key[PB_SIGN_SECRET_MAX];
	size_t len;
} pb_sign_secret;

/* A new secret's text, "whsec_" + base64 of PB_SIGN_SECRET_BYTES random
 * bytes. PB_OK or PB_ERR_IO. */
int pb_sign_secret_new(char out[PB_SIGN_SECRET_TEXT_MAX + 1]);
/* Read a secret's text s[0..n). PB_OK, or PB_ERR_FORMAT when it is not
 * "whsec_" and base64 of 1 to PB_SIGN_SECRET_MAX bytes. */
int pb_sign_secret_read(pb_sign_secret *sec, const char *s, size_t n);
/* "v1," and the base64 signature of id.timestamp.body, into
 * out[PB_SIGN_B64_LEN + 4]. */
void pb_sign_v1(char *out, const pb_sign_secret *sec, const char *id, int64_t ts,
		const char *body, size_t body_len);

#endif
