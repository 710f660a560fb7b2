/* The controller's certificate against the CA pin (agent/pin.h). */
#include "agent/pin.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>

#include "common/tls.h"
#include "common/util.h"
#include "common/x509.h"

static SSL_CTX *client_ctx;
static int agent_ex_index = -1;

/* The controller sends its chain; the CA in it must hash to our pin, and
 * the leaf must chain to that CA with the serverAuth purpose (so a board's
 * client certificate, from the same CA, cannot pose as the controller). */
static int agent_verify_server(X509_STORE_CTX *sctx, void *arg)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(sctx, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct agent_pin_check *a = ssl ? SSL_get_ex_data(ssl, agent_ex_index) : NULL;
	STACK_OF(X509) *chain = X509_STORE_CTX_get0_untrusted(sctx);
	X509 *leaf = X509_STORE_CTX_get0_cert(sctx);
	X509 *ca = NULL;
	X509_STORE *store = NULL;
	X509_STORE_CTX *vctx = NULL;
	int ok = 0;
	(void)arg;

	if (!a || !leaf)
		return 0;
	for (int i = 0; chain && i < sk_X509_num(chain); i++) {
		uint8_t pin[32];
		X509 *c = sk_X509_value(chain, i);
		if (sky_cert_pin(c, pin) == 0 && sky_memeq_ct(pin, a->pin, 32)) {
			ca = c;
			break;
		}
	}
	if (!ca) {
		snprintf(a->verify_error, sizeof(a->verify_error),
			 "the controller's CA does not match the pinned skyroot.ca hash: wrong controller, or a "
			 "wrong pin (take it from 'skyctl token create')");
		X509_STORE_CTX_set_error(sctx, X509_V_ERR_CERT_UNTRUSTED);
		return 0;
	}
	store = X509_STORE_new();
	vctx = X509_STORE_CTX_new();
	if (!store || !vctx || X509_STORE_add_cert(store, ca) != 1 ||
	    X509_STORE_CTX_init(vctx, store, leaf, chain) != 1)
		goto out;
	X509_STORE_CTX_set_purpose(vctx, X509_PURPOSE_SSL_SERVER);
	ok = X509_verify_cert(vctx) == 1;
	if (!ok) {
		int e = X509_STORE_CTX_get_error(vctx);
		snprintf(a->verify_error, sizeof(a->verify_error),
			 "the controller's certificate does not verify against the pinned CA: %s",
			 X509_verify_cert_error_string(e));
		X509_STORE_CTX_set_error(sctx, e);
	}
out:
	X509_STORE_CTX_free(vctx);
	X509_STORE_free(store);
	ERR_clear_error();
	return ok;
}

SSL_CTX *agent_pin_ctx(void)
{
	if (client_ctx)
		return client_ctx;
	agent_ex_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	client_ctx = sky_tls_ctx_new(SKY_TLS_CLIENT, TLS1_3_VERSION);
	if (!client_ctx)
		return NULL;
	SSL_CTX_set_max_proto_version(client_ctx, TLS1_3_VERSION);
	SSL_CTX_set_verify(client_ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_cert_verify_callback(client_ctx, agent_verify_server, NULL);
	return client_ctx;
}

void agent_pin_attach(SSL *ssl, struct agent_pin_check *check)
{
	SSL_set_ex_data(ssl, agent_ex_index, check);
}
