package tpm

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"

	"github.com/google/go-tpm/tpm2"
)

// policyRef qualifies every approval, so a signature made by the policy-signing key for
// anything else could never be replayed as an approval of a boot state.
var policyRef = []byte("anya/boot-state/v1")

// selection returns the TPML_PCR_SELECTION for mask in the SHA-256 bank.
func selection(mask uint32) tpm2.TPMLPCRSelection {
	return tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{
		Hash:      tpm2.TPMAlgSHA256,
		PCRSelect: []byte{byte(mask), byte(mask >> 8), byte(mask >> 16)},
	}}}
}

// approvedPolicy is the digest of the policy an approval authorises: PolicyPCR(selection,
// pcrDigest) from an empty session.
func approvedPolicy(mask uint32, pcrDigest []byte) ([]byte, error) {
	calc, err := tpm2.NewPolicyCalculator(tpm2.TPMAlgSHA256)
	if err != nil {
		return nil, err
	}
	cmd := tpm2.PolicyPCR{PcrDigest: tpm2.TPM2BDigest{Buffer: pcrDigest}, Pcrs: selection(mask)}
	if err := cmd.Update(calc); err != nil {
		return nil, err
	}
	return calc.Hash().Digest, nil
}

// approvalHash is aHash of TPM2_PolicyAuthorize: H(approvedPolicy || policyRef), the digest the
// policy-signing key signs.
func approvalHash(approved []byte) []byte {
	h := sha256.New()
	h.Write(approved)
	h.Write(policyRef)
	return h.Sum(nil)
}

// objectPolicy is the authPolicy of a sealed object: PolicyAuthorize(signer, policyRef), then
// PolicyAuthValue for the seed object (whose authValue is derived from the owner's PIN).
func objectPolicy(signerName tpm2.TPM2BName, withAuthValue bool) ([]byte, error) {
	calc, err := tpm2.NewPolicyCalculator(tpm2.TPMAlgSHA256)
	if err != nil {
		return nil, err
	}
	pa := tpm2.PolicyAuthorize{KeySign: signerName, PolicyRef: tpm2.TPM2BDigest{Buffer: policyRef}}
	if err := pa.Update(calc); err != nil {
		return nil, err
	}
	if withAuthValue {
		if err := (tpm2.PolicyAuthValue{}).Update(calc); err != nil {
			return nil, err
		}
	}
	return calc.Hash().Digest, nil
}

// signerTemplate is the public area under which the policy-signing key is loaded (public part
// only) with TPM2_LoadExternal; its name is what the objects' policies commit to.
func signerTemplate(pub []byte) tpm2.TPMTPublic {
	return tpm2.TPMTPublic{
		Type:    tpm2.TPMAlgECC,
		NameAlg: tpm2.TPMAlgSHA256,
		ObjectAttributes: tpm2.TPMAObject{
			SignEncrypt:  true,
			UserWithAuth: true,
		},
		Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
			Symmetric: tpm2.TPMTSymDefObject{Algorithm: tpm2.TPMAlgNull},
			Scheme: tpm2.TPMTECCScheme{
				Scheme: tpm2.TPMAlgECDSA,
				Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDSA,
					&tpm2.TPMSSigSchemeECDSA{HashAlg: tpm2.TPMAlgSHA256}),
			},
			CurveID: tpm2.TPMECCNistP256,
			KDF:     tpm2.TPMTKDFScheme{Scheme: tpm2.TPMAlgNull},
		}),
		Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{
			X: tpm2.TPM2BECCParameter{Buffer: pub[1:33]},
			Y: tpm2.TPM2BECCParameter{Buffer: pub[33:65]},
		}),
	}
}

func signerName(pub []byte) (tpm2.TPM2BName, error) {
	tmpl := signerTemplate(pub)
	n, err := tpm2.ObjectName(&tmpl)
	if err != nil {
		return tpm2.TPM2BName{}, err
	}
	return *n, nil
}

// sealedTemplate is the public area of a sealed data object: bound to this TPM and parent,
// usable only through its policy (no UserWithAuth: the authValue alone never suffices), and
// with ObjectChangeAuth impossible (AdminWithPolicy with a policy that never allows it).
func sealedTemplate(policy []byte, noDA bool) tpm2.TPMTPublic {
	return tpm2.TPMTPublic{
		Type:    tpm2.TPMAlgKeyedHash,
		NameAlg: tpm2.TPMAlgSHA256,
		ObjectAttributes: tpm2.TPMAObject{
			FixedTPM:        true,
			FixedParent:     true,
			AdminWithPolicy: true,
			NoDA:            noDA,
		},
		AuthPolicy: tpm2.TPM2BDigest{Buffer: policy},
		Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgKeyedHash, &tpm2.TPMSKeyedHashParms{
			Scheme: tpm2.TPMTKeyedHashScheme{Scheme: tpm2.TPMAlgNull},
		}),
	}
}

// signApproval signs the approval of the given PCR digest with the policy-signing key.
func signApproval(key *ecdsa.PrivateKey, mask uint32, digest [32]byte) (approval, error) {
	approved, err := approvedPolicy(mask, digest[:])
	if err != nil {
		return approval{}, err
	}
	r, s, err := ecdsa.Sign(rand.Reader, key, approvalHash(approved))
	if err != nil {
		return approval{}, err
	}
	a := approval{pcrDigest: digest}
	r.FillBytes(a.r[:])
	s.FillBytes(a.s[:])
	return a, nil
}

var errBadApproval = errors.New("approval signature does not verify")

// verifyApprovals checks every approval against the blob's policy-signing key, in software,
// so that damage is reported as corruption before the TPM is asked anything.
func (b *blobV1) verifyApprovals() (*ecdsa.PublicKey, error) {
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), b.signerPub)
	if err != nil {
		return nil, fmt.Errorf("policy-signing key: %w", errFormat)
	}
	for i, a := range b.approvals {
		approved, err := approvedPolicy(b.pcrMask, a.pcrDigest[:])
		if err != nil {
			return nil, err
		}
		r := new(big.Int).SetBytes(a.r[:])
		s := new(big.Int).SetBytes(a.s[:])
		if !ecdsa.Verify(pub, approvalHash(approved), r, s) {
			return nil, fmt.Errorf("approval %d: %w", i, errBadApproval)
		}
	}
	return pub, nil
}

// checkObjectPolicies checks that both sealed objects commit to the blob's policy-signing key
// (the TPM checks the public areas' integrity at Load; this catches a swapped key early).
func (b *blobV1) checkObjectPolicies() error {
	name, err := signerName(b.signerPub)
	if err != nil {
		return err
	}
	for _, o := range []struct {
		what      string
		pub       []byte
		authValue bool
	}{{"signer object", b.signerObjPub, false}, {"seed object", b.seedObjPub, true}} {
		want, err := objectPolicy(name, o.authValue)
		if err != nil {
			return err
		}
		pub, err := tpm2.Unmarshal[tpm2.TPMTPublic](o.pub)
		if err != nil {
			return fmt.Errorf("%s public area: %w", o.what, errFormat)
		}
		if pub.Type != tpm2.TPMAlgKeyedHash || string(pub.AuthPolicy.Buffer) != string(want) {
			return fmt.Errorf("%s is not bound to the blob's policy-signing key: %w", o.what, errFormat)
		}
	}
	return nil
}
