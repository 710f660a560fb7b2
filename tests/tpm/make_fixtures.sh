#!/bin/sh
# Makes tests/fixtures/tpm/: vectors from a real TPM 2.0 (swtpm, started by
# tests/tpm/swtpm.sh with its own manufacturer CA) through Debian's
# tpm2-tools, for tests/unit/test_tpm_verify.c.  Run it again only to renew
# them (the EK, the CA and every value change; the unit test reads them all):
#   tests/tpm/make_fixtures.sh [OUTDIR]     (default tests/fixtures/tpm)
# Files (binary ones in the TPM's own marshalled forms):
#   ek_cert.der      the RSA EK certificate read from NV 0x01c00002
#   ca_root.pem      the manufacturer's root CA (swtpm_localca)
#   ca_issuer.pem    its intermediate, which signed ek_cert.der
#   ek.pub           the EK (TCG default RSA template): TPM2B_PUBLIC
#   ak.pub           the AK (RSA 2048, RSASSA-SHA256, restricted signing,
#                    made under the EK): TPM2B_PUBLIC
#   ak.name          the AK's name as the TPM computes it (nameAlg || digest)
#   nonce.bin        the qualifying data given to the quote (32 bytes)
#   quote.attest     TPMS_ATTEST of TPM2_Quote over sha256:0-7,11
#   quote.sig        TPMT_SIGNATURE of that quote
#   pcrs.bin         the nine PCR values (32 bytes each, in order 0-7, 11)
#   quote_no11.*, pcrs_no11.bin   a quote of PCRs 0-7 only
#   ak_ecc.pub, ak_ecc.name, quote_ecc.*   an ECC P-256 AK and its quote
#                    (same nonce and PCR values)
#   time.attest, time.sig   TPM2_GetTime signed by the AK: not a quote
#   cred.secret      a secret, and cred.blob the credential tpm2_makecredential
#                    made of it for ek.pub and ak.name (tpm2-tools' file:
#                    magic BADCC0DE, version 1, TPM2B_ID_OBJECT,
#                    TPM2B_ENCRYPTED_SECRET), activated by the TPM to check it
#   foreign_*        a second swtpm's EK certificate and CA (another maker)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../fixtures/tpm}
mkdir -p "$out"
out=$(cd "$out" && pwd)
for p in tpm2_createek tpm2_createak tpm2_quote tpm2_pcrread tpm2_makecredential tpm2_activatecredential; do
	command -v $p >/dev/null || { echo "make_fixtures.sh: $p missing (tpm2-tools)" >&2; exit 1; }
done
work=$(mktemp -d)
cleanup() {
	"$here/swtpm.sh" stop "$work/a" || true
	"$here/swtpm.sh" stop "$work/b" || true
	rm -rf "$work"
}
trap cleanup EXIT
mkdir "$work/a" "$work/b"
TPM2TOOLS_TCTI=$("$here/swtpm.sh" start "$work/a")
export TPM2TOOLS_TCTI
cd "$work"

# Measurements to quote: PCR 0-7 and 11 as a boot would leave them.
for i in 0 1 2 3 4 5 6 7 11; do
	tpm2_pcrextend "$i:sha256=$(printf 'skyroot fixture pcr %d' "$i" | sha256sum | cut -d' ' -f1)"
done
tpm2_nvread 0x01c00002 -C 0x01c00002 -o "$out/ek_cert.der" 2>/dev/null
cp "$work/a/ca/rootca.pem" "$out/ca_root.pem"
cp "$work/a/ca/issuer.pem" "$out/ca_issuer.pem"
tpm2_createek -c ek.ctx -G rsa -u "$out/ek.pub"
tpm2_createak -C ek.ctx -c ak.ctx -G rsa -g sha256 -s rsassa -u "$out/ak.pub" -n "$out/ak.name" -f tss >/dev/null
# No resource manager in front of swtpm: free the transient slots each time.
tpm2_flushcontext -t
head -c 32 /dev/urandom > "$out/nonce.bin"
tpm2_quote -c ak.ctx -l sha256:0,1,2,3,4,5,6,7,11 -q "$(od -An -tx1 -v "$out/nonce.bin" | tr -d ' \n')" \
	-m "$out/quote.attest" -s "$out/quote.sig" -g sha256 >/dev/null
tpm2_flushcontext -t
tpm2_pcrread sha256:0,1,2,3,4,5,6,7,11 -o "$out/pcrs.bin" >/dev/null
# Signed by the same AK but refused: a quote of PCRs 0-7 only (no PCR 11),
# and an attestation that is not a quote (TPM2_GetTime).
tpm2_quote -c ak.ctx -l sha256:0,1,2,3,4,5,6,7 -q "$(od -An -tx1 -v "$out/nonce.bin" | tr -d ' \n')" \
	-m "$out/quote_no11.attest" -s "$out/quote_no11.sig" -g sha256 >/dev/null
tpm2_pcrread sha256:0,1,2,3,4,5,6,7 -o "$out/pcrs_no11.bin" >/dev/null
tpm2_flushcontext -t
tpm2_gettime -c ak.ctx -q "$(od -An -tx1 -v "$out/nonce.bin" | tr -d ' \n')" \
	-o "$out/time.sig" --attestation "$out/time.attest" >/dev/null
tpm2_flushcontext -t
# An ECC AK (P-256, ECDSA-SHA256) under the same EK, and its quote.
tpm2_createak -C ek.ctx -c akecc.ctx -G ecc -g sha256 -s ecdsa -u "$out/ak_ecc.pub" -n "$out/ak_ecc.name" -f tss >/dev/null
tpm2_flushcontext -t
tpm2_quote -c akecc.ctx -l sha256:0,1,2,3,4,5,6,7,11 -q "$(od -An -tx1 -v "$out/nonce.bin" | tr -d ' \n')" \
	-m "$out/quote_ecc.attest" -s "$out/quote_ecc.sig" -g sha256 >/dev/null
tpm2_flushcontext -t

# A credential for the AK, and its activation by the TPM (the policy
# session satisfies the EK's PolicySecret(endorsement)).
head -c 32 /dev/urandom > "$out/cred.secret"
tpm2_makecredential -T none -u "$out/ek.pub" -s "$out/cred.secret" \
	-n "$(od -An -tx1 -v "$out/ak.name" | tr -d ' \n')" -o "$out/cred.blob"
tpm2_startauthsession --policy-session -S session.ctx
tpm2_policysecret -S session.ctx -c e >/dev/null
tpm2_activatecredential -c ak.ctx -C ek.ctx -i "$out/cred.blob" -o activated.bin -P "session:session.ctx" >/dev/null
tpm2_flushcontext -t
cmp activated.bin "$out/cred.secret"

# Another maker: a second swtpm with a CA of its own.
TPM2TOOLS_TCTI=$("$here/swtpm.sh" start "$work/b")
tpm2_nvread 0x01c00002 -C 0x01c00002 -o "$out/foreign_ek_cert.der" 2>/dev/null
cp "$work/b/ca/rootca.pem" "$out/foreign_ca_root.pem"
cp "$work/b/ca/issuer.pem" "$out/foreign_ca_issuer.pem"
chmod 644 "$out"/*
echo "fixtures in $out"
