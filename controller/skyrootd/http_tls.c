/* The HTTPS port's TLS policy (docs/api.md, "TLS"): TLS 1.3, or TLS 1.2
 * with ECDHE and an AEAD cipher only; the server's order of suites; no
 * session tickets and no session cache (every connection does a full
 * handshake: API clients are few); http/1.1 in ALPN. */
#include <openssl/err.h>

#include "common/tls.h"
#include "controller/skyrootd/http.h"

/* The server key is ECDSA P-256 (skyrootd init). */
#define HTTP_TLS12_CIPHERS \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305"

/* Boards and curl both speak HTTP/1.1 only here: say so in ALPN. */
static int http_tls__alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
				 const unsigned char *in, unsigned int inlen, void *arg)
{
	static const unsigned char http11[] = "\x08http/1.1";
	unsigned char *sel = NULL;

	(void)ssl;
	(void)arg;
	if (SSL_select_next_proto(&sel, outlen, http11, sizeof(http11) - 1, in, inlen) != OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK;
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

SSL_CTX *http_tls_ctx_new(X509 *cert, EVP_PKEY *key, X509 *chain)
{
	SSL_CTX *ctx;

	if (!cert || !key || !chain)
		return NULL;
	ctx = sky_tls_ctx_new(SKY_TLS_SERVER, TLS1_2_VERSION);
	if (!ctx)
		return NULL;
	if (SSL_CTX_set_cipher_list(ctx, HTTP_TLS12_CIPHERS) != 1)
		goto fail;
	SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_TICKET);
	if (SSL_CTX_use_certificate(ctx, cert) != 1 || SSL_CTX_use_PrivateKey(ctx, key) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1)
		goto fail;
	/* Send the chain along so clients can check it against the pin. */
	X509_up_ref(chain);
	if (SSL_CTX_add_extra_chain_cert(ctx, chain) != 1) {
		X509_free(chain);
		goto fail;
	}
	/* API clients authenticate with a bearer token, not a certificate. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_alpn_select_cb(ctx, http_tls__alpn_select, NULL);
	return ctx;
fail:
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return NULL;
}
