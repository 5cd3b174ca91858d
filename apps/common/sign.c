/*
 * sign.c - Standard Webhooks v1 signatures and secrets (sign.h).
 */
#include "sign.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "pb.h"

#define PREFIX "whsec_"

int pb_sign_secret_new(char out[PB_SIGN_SECRET_TEXT_MAX + 1])
{
	unsigned char r[PB_SIGN_SECRET_BYTES];

	if (pb_random_bytes(r, sizeof(r)) != PB_OK)
		return PB_ERR_IO;
	memcpy(out, PREFIX, sizeof(PREFIX) - 1);
	EVP_EncodeBlock((unsigned char *)out + sizeof(PREFIX) - 1, r, (int)sizeof(r));
	return PB_OK;
}

int pb_sign_secret_read(pb_sign_secret *sec, const char *s, size_t n)
{
	unsigned char buf[PB_SIGN_SECRET_TEXT_MAX];
	size_t b64 = n - (sizeof(PREFIX) - 1), i, pad = 0;
	int got;

	if (n <= sizeof(PREFIX) - 1 || strncmp(s, PREFIX, sizeof(PREFIX) - 1) != 0 ||
	    b64 % 4 != 0 || b64 > (size_t)4 * ((PB_SIGN_SECRET_MAX + 2) / 3))
		return PB_ERR_FORMAT;
	s += sizeof(PREFIX) - 1;
	for (i = 0; i < b64; i++) {
		int c = (unsigned char)s[i];

		if (c == '=' && i >= b64 - 2) {
			pad++;
			continue;
		}
		if (pad || !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			     (c >= '0' && c <= '9') || c == '+' || c == '/'))
			return PB_ERR_FORMAT;
	}
	/* EVP_DecodeBlock counts the padding as zero bytes: take them off. */
	got = EVP_DecodeBlock(buf, (const unsigned char *)s, (int)b64);
	if (got < 0 || (size_t)got < pad || (size_t)got - pad == 0 ||
	    (size_t)got - pad > PB_SIGN_SECRET_MAX)
		return PB_ERR_FORMAT;
	sec->len = (size_t)got - pad;
	memcpy(sec->key, buf, sec->len);
	return PB_OK;
}

/* HMAC, looked up in OpenSSL's providers once (a fetch per signature cost
 * more than the signature); shared by every thread, as OpenSSL allows. */
static EVP_MAC *hmac;
static pthread_once_t hmac_once = PTHREAD_ONCE_INIT;

static void hmac_fetch(void)
{
	hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
}

void pb_sign_v1(char *out, const pb_sign_secret *sec, const char *id, int64_t ts,
		const char *body, size_t body_len)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	size_t mac_len = 0;
	char head[160], digest[] = "SHA256";
	int hn = snprintf(head, sizeof(head), "%s.%lld.", id, (long long)ts);
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
		OSSL_PARAM_construct_end(),
	};
	EVP_MAC_CTX *h;
	int ok;

	pthread_once(&hmac_once, hmac_fetch);
	h = hmac ? EVP_MAC_CTX_new(hmac) : NULL;
	ok = h != NULL && hn >= 0 && (size_t)hn < sizeof(head) &&
	     EVP_MAC_init(h, sec->key, sec->len, params) &&
	     EVP_MAC_update(h, (const unsigned char *)head, (size_t)hn) &&
	     EVP_MAC_update(h, (const unsigned char *)body, body_len) &&
	     EVP_MAC_final(h, mac, &mac_len, sizeof(mac));
	EVP_MAC_CTX_free(h);
	memcpy(out, "v1,", 4);
	if (ok) /* else "v1," alone: it verifies nothing, as a receiver must see */
		EVP_EncodeBlock((unsigned char *)out + 3, mac, (int)mac_len);
}
