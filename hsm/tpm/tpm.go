package tpm

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"sync"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/linuxtpm"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/anya-edge/anya/hsm/seal"
)

// DefaultDevice is the kernel's TPM resource manager, which flushes whatever a crashed process
// left loaded and lets several processes share the TPM.
const DefaultDevice = "/dev/tpmrm0"

// MaxSecret is the largest secret Seal accepts (the wallet seed is 16-64 bytes).
const MaxSecret = 1024

// DefaultPCRs is the boot state a blob is bound to unless [WithPCRs] says otherwise:
// 0 firmware code, 2 option ROMs, 4 boot loader and kernel (UKI) images, 7 Secure Boot policy,
// 9 initrd as measured by the kernel, 11 UKI sections (systemd-stub), 12 kernel command line
// overrides and credentials. PCR 1 and 5 (firmware settings, boot order, GPT) are left out:
// they change with harmless BIOS setting changes and with A/B boot entries.
var DefaultPCRs = []int{0, 2, 4, 7, 9, 11, 12}

// PCRValues maps a PCR index to its SHA-256 bank value (32 bytes).
type PCRValues map[int][]byte

// Sealer is the TPM 2.0 provider. It is safe for concurrent use: commands to the TPM are
// serialised.
type Sealer struct {
	mu   sync.Mutex
	tpm  transport.TPMCloser
	mask uint32
}

// Option configures a [Sealer].
type Option func(*Sealer) error

// WithPCRs selects the PCRs (SHA-256 bank, 0..23) new blobs are bound to. Existing blobs keep
// the selection they were sealed with.
func WithPCRs(pcrs ...int) Option {
	return func(s *Sealer) error {
		if len(pcrs) == 0 {
			return errors.New("empty PCR selection")
		}
		var mask uint32
		for _, p := range pcrs {
			if p < 0 || p > 23 {
				return fmt.Errorf("PCR %d outside 0..23", p)
			}
			mask |= 1 << p
		}
		s.mask = mask
		return nil
	}
}

// New returns a Sealer talking to the TPM over t (for example swtpm through
// transport.FromReadWriteCloser over a TCP connection). Close closes t.
func New(t transport.TPMCloser, opts ...Option) (*Sealer, error) {
	s := &Sealer{tpm: t}
	for _, o := range append([]Option{WithPCRs(DefaultPCRs...)}, opts...) {
		if err := o(s); err != nil {
			return nil, fmt.Errorf("tpm: %w", err)
		}
	}
	return s, nil
}

// Open opens the TPM character device at path ("" means [DefaultDevice]). A missing device is
// [seal.ErrDeviceMissing].
func Open(path string, opts ...Option) (*Sealer, error) {
	if path == "" {
		path = DefaultDevice
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("tpm: %s: %w", path, seal.ErrDeviceMissing)
	}
	t, err := linuxtpm.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tpm: open %s: %w", path, err)
	}
	s, err := New(t, opts...)
	if err != nil {
		t.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the transport.
func (s *Sealer) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tpm.Close()
}

// Kind implements [seal.Sealer].
func (s *Sealer) Kind() string { return seal.KindTPM }

// authValue derives the seed object's authValue from what the owner typed: empty when both
// passphrase and PIN are empty, else SHA-256 over both (length-prefixed), with trailing zero
// bytes removed because the TPM strips them. The TPM's dictionary-attack protection, not the
// hash, is what makes a short PIN safe.
func authValue(a seal.Auth) []byte {
	if len(a.Passphrase) == 0 && a.PIN == "" {
		return nil
	}
	h := sha256.New()
	h.Write([]byte("anya/seal/tpm/auth\x00"))
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(a.Passphrase)))
	h.Write(n[:])
	h.Write(a.Passphrase)
	binary.BigEndian.PutUint32(n[:], uint32(len(a.PIN)))
	h.Write(n[:])
	h.Write([]byte(a.PIN))
	return bytes.TrimRight(h.Sum(nil), "\x00")
}

// Seal implements [seal.Sealer]: the secret is encrypted with a fresh data key, and the data key
// is sealed in the TPM under the policy "approved boot state (PolicyAuthorize) and the auth
// value (PolicyAuthValue)". The current values of the selected PCRs are approved.
func (s *Sealer) Seal(ctx context.Context, secret []byte, auth seal.Auth) (seal.Blob, error) {
	if err := ctx.Err(); err != nil {
		return seal.Blob{}, fmt.Errorf("tpm: seal: %w", err)
	}
	if len(secret) == 0 || len(secret) > MaxSecret {
		return seal.Blob{}, fmt.Errorf("tpm: seal: secret of %d bytes, want 1..%d", len(secret), MaxSecret)
	}
	dataKey := make([]byte, chacha20poly1305.KeySize)
	defer seal.Zero(dataKey)
	b := &blobV1{nonce: make([]byte, chacha20poly1305.NonceSizeX)}
	if _, err := rand.Read(dataKey); err != nil {
		return seal.Blob{}, fmt.Errorf("tpm: seal: random: %w", err)
	}
	if _, err := rand.Read(b.nonce); err != nil {
		return seal.Blob{}, fmt.Errorf("tpm: seal: random: %w", err)
	}
	signer, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return seal.Blob{}, fmt.Errorf("tpm: seal: policy-signing key: %w", err)
	}
	signerPriv, err := signer.Bytes()
	if err != nil {
		return seal.Blob{}, fmt.Errorf("tpm: seal: policy-signing key: %w", err)
	}
	defer seal.Zero(signerPriv)
	if b.signerPub, err = signer.PublicKey.Bytes(); err != nil {
		return seal.Blob{}, fmt.Errorf("tpm: seal: policy-signing key: %w", err)
	}
	name, err := signerName(b.signerPub)
	if err != nil {
		return seal.Blob{}, fmt.Errorf("tpm: seal: signer name: %w", err)
	}
	signerPolicy, err := objectPolicy(name, false)
	if err != nil {
		return seal.Blob{}, fmt.Errorf("tpm: seal: policy: %w", err)
	}
	seedPolicy, err := objectPolicy(name, true)
	if err != nil {
		return seal.Blob{}, fmt.Errorf("tpm: seal: policy: %w", err)
	}
	av := authValue(auth)
	defer seal.Zero(av)

	s.mu.Lock()
	defer s.mu.Unlock()
	b.pcrMask = s.mask
	srk, err := s.createSRK()
	if err != nil {
		return seal.Blob{}, err
	}
	defer s.flush(srk.Handle)
	current, err := s.readPCRs(b.pcrMask)
	if err != nil {
		return seal.Blob{}, err
	}
	digest, err := pcrDigest(b.pcrMask, current)
	if err != nil {
		return seal.Blob{}, fmt.Errorf("tpm: seal: %w", err)
	}
	// A salted session encrypting the first parameter keeps the sealed data and the auth value
	// off the bus, and the session key out of reach of anyone without the SRK.
	sess, closeSess, err := tpm2.HMACSession(s.tpm, tpm2.TPMAlgSHA256, 16,
		tpm2.Salted(srk.Handle, srk.pub), tpm2.AESEncryption(128, tpm2.EncryptIn))
	if err != nil {
		return seal.Blob{}, tpmErr("seal: start session", err)
	}
	defer closeSess()
	if b.signerObjPub, b.signerObjPriv, err = s.create(srk, sess, signerPriv, nil, sealedTemplate(signerPolicy, true)); err != nil {
		return seal.Blob{}, err
	}
	// An empty auth value cannot be guessed, so it does not need dictionary-attack protection,
	// and without it a lockout caused by someone else cannot stop the box from booting.
	if b.seedObjPub, b.seedObjPriv, err = s.create(srk, sess, dataKey, av, sealedTemplate(seedPolicy, len(av) == 0)); err != nil {
		return seal.Blob{}, err
	}
	a, err := signApproval(signer, b.pcrMask, digest)
	if err != nil {
		return seal.Blob{}, fmt.Errorf("tpm: seal: sign approval: %w", err)
	}
	b.approvals = []approval{a}
	aead, err := chacha20poly1305.NewX(dataKey)
	if err != nil {
		return seal.Blob{}, fmt.Errorf("tpm: seal: cipher: %w", err)
	}
	b.encodeHead()
	b.ciphertext = aead.Seal(nil, b.nonce, secret, b.associatedData())
	return seal.Blob{Kind: seal.KindTPM, Version: formatVersion, Data: b.encode()}, nil
}

// Unseal implements [seal.Sealer]. Errors: [seal.ErrWrongKind], [seal.ErrCorrupt] (damaged blob,
// or one made by another TPM), [seal.ErrBootState] (no approval matches the current PCRs),
// [seal.ErrWrongAuth], [seal.ErrLocked] (dictionary-attack lockout).
func (s *Sealer) Unseal(ctx context.Context, blob seal.Blob, auth seal.Auth) ([]byte, error) {
	b, err := decode(blob)
	if err != nil {
		return nil, err
	}
	if err := b.check(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("tpm: unseal: %w", err)
	}
	av := authValue(auth)
	defer seal.Zero(av)

	s.mu.Lock()
	defer s.mu.Unlock()
	srk, err := s.createSRK()
	if err != nil {
		return nil, err
	}
	defer s.flush(srk.Handle)
	ap, err := s.currentApproval(b)
	if err != nil {
		return nil, err
	}
	obj, err := s.load(srk, b.seedObjPub, b.seedObjPriv, "seed object")
	if err != nil {
		return nil, err
	}
	defer s.flush(obj.Handle)
	dataKey, err := s.unsealWithPolicy(srk, obj, b, ap, av, true)
	if err != nil {
		return nil, err
	}
	defer seal.Zero(dataKey)
	aead, err := chacha20poly1305.NewX(dataKey)
	if err != nil {
		return nil, fmt.Errorf("tpm: unseal: data key of %d bytes: %w", len(dataKey), seal.ErrCorrupt)
	}
	secret, err := aead.Open(nil, b.nonce, b.ciphertext, b.associatedData())
	if err != nil {
		return nil, fmt.Errorf("tpm: unseal: ciphertext or header does not authenticate: %w", seal.ErrCorrupt)
	}
	return secret, nil
}

// PCRs returns the current values of the PCRs new blobs are bound to. The update agent starts
// from these (or from a replay of the event log) to compute the values of the next boot.
func (s *Sealer) PCRs(ctx context.Context) (PCRValues, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("tpm: read PCRs: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.readPCRs(s.mask)
}

// Authorize approves the boot state next (values of every PCR in the blob's selection, as the
// box will measure them when it boots the updated slot) and returns the blob with that
// approval added. It only works in an already approved boot state: it unseals the blob's
// policy-signing key, which is under the same policy (without the PIN, so that an unattended
// update can run it). The blob keeps the approval of the current boot state (so falling back
// to the old slot still unseals) and the new one; older approvals are dropped. It returns
// [seal.ErrBootState] if the current state is not approved.
func (s *Sealer) Authorize(ctx context.Context, blob seal.Blob, next PCRValues) (seal.Blob, error) {
	b, err := decode(blob)
	if err != nil {
		return seal.Blob{}, err
	}
	if err := b.check(); err != nil {
		return seal.Blob{}, err
	}
	nextDigest, err := pcrDigest(b.pcrMask, next)
	if err != nil {
		return seal.Blob{}, fmt.Errorf("tpm: authorize: next boot state: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return seal.Blob{}, fmt.Errorf("tpm: authorize: %w", err)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	srk, err := s.createSRK()
	if err != nil {
		return seal.Blob{}, err
	}
	defer s.flush(srk.Handle)
	ap, err := s.currentApproval(b)
	if err != nil {
		return seal.Blob{}, err
	}
	obj, err := s.load(srk, b.signerObjPub, b.signerObjPriv, "signer object")
	if err != nil {
		return seal.Blob{}, err
	}
	defer s.flush(obj.Handle)
	raw, err := s.unsealWithPolicy(srk, obj, b, ap, nil, false)
	if err != nil {
		return seal.Blob{}, err
	}
	defer seal.Zero(raw)
	key, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), raw)
	if err != nil {
		return seal.Blob{}, fmt.Errorf("tpm: authorize: sealed policy-signing key: %w", seal.ErrCorrupt)
	}
	if pub, err := key.PublicKey.Bytes(); err != nil || !bytes.Equal(pub, b.signerPub) {
		return seal.Blob{}, fmt.Errorf("tpm: authorize: sealed policy-signing key does not match the blob: %w", seal.ErrCorrupt)
	}
	approvals := []approval{ap}
	if nextDigest != ap.pcrDigest {
		a, err := signApproval(key, b.pcrMask, nextDigest)
		if err != nil {
			return seal.Blob{}, fmt.Errorf("tpm: authorize: sign: %w", err)
		}
		approvals = append(approvals, a)
	}
	b.approvals = approvals
	return seal.Blob{Kind: seal.KindTPM, Version: formatVersion, Data: b.encode()}, nil
}

// ExtendPCR returns the value a SHA-256 PCR holding pcr has after extending it with digest:
// SHA-256(pcr || digest). Replaying a boot's measurements from 32 zero bytes gives the value
// the TPM will hold, which is how the update agent predicts the next boot state.
func ExtendPCR(pcr, digest []byte) []byte {
	h := sha256.New()
	h.Write(pcr)
	h.Write(digest)
	return h.Sum(nil)
}

// check verifies what can be verified without the TPM: approvals signed by the blob's
// policy-signing key and sealed objects committed to that key.
func (b *blobV1) check() error {
	if _, err := b.verifyApprovals(); err != nil {
		return fmt.Errorf("tpm: blob: %w: %w", err, seal.ErrCorrupt)
	}
	if err := b.checkObjectPolicies(); err != nil {
		return fmt.Errorf("tpm: blob: %w: %w", err, seal.ErrCorrupt)
	}
	return nil
}

// currentApproval returns the blob's approval for the current PCR values.
func (s *Sealer) currentApproval(b *blobV1) (approval, error) {
	current, err := s.readPCRs(b.pcrMask)
	if err != nil {
		return approval{}, err
	}
	digest, err := pcrDigest(b.pcrMask, current)
	if err != nil {
		return approval{}, fmt.Errorf("tpm: %w", err)
	}
	for _, a := range b.approvals {
		if a.pcrDigest == digest {
			return a, nil
		}
	}
	return approval{}, fmt.Errorf("tpm: PCRs %s match none of the blob's %d approved boot states: %w",
		maskString(b.pcrMask), len(b.approvals), seal.ErrBootState)
}

type srkHandle struct {
	tpm2.NamedHandle
	pub tpm2.TPMTPublic
}

// createSRK creates the storage root key from the owner hierarchy's standard ECC template
// (TCG "Provisioning Guidance" SRK): the same key every time for a given TPM, so nothing is
// persisted. It needs the owner hierarchy's auth to be empty, the default.
func (s *Sealer) createSRK() (*srkHandle, error) {
	rsp, err := tpm2.CreatePrimary{
		PrimaryHandle: tpm2.TPMRHOwner,
		InPublic:      tpm2.New2B(tpm2.ECCSRKTemplate),
	}.Execute(s.tpm)
	if err != nil {
		return nil, tpmErr("create SRK", err)
	}
	pub, err := rsp.OutPublic.Contents()
	if err != nil {
		s.flush(rsp.ObjectHandle)
		return nil, fmt.Errorf("tpm: SRK public area: %w", err)
	}
	return &srkHandle{NamedHandle: tpm2.NamedHandle{Handle: rsp.ObjectHandle, Name: rsp.Name}, pub: *pub}, nil
}

// create seals data in a new object under the SRK and returns its public and private areas.
func (s *Sealer) create(srk *srkHandle, sess tpm2.Session, data, auth []byte, tmpl tpm2.TPMTPublic) (pub, priv []byte, err error) {
	rsp, err := tpm2.Create{
		ParentHandle: tpm2.AuthHandle{Handle: srk.Handle, Name: srk.Name, Auth: sess},
		InSensitive: tpm2.TPM2BSensitiveCreate{Sensitive: &tpm2.TPMSSensitiveCreate{
			UserAuth: tpm2.TPM2BAuth{Buffer: auth},
			Data:     tpm2.NewTPMUSensitiveCreate(&tpm2.TPM2BSensitiveData{Buffer: data}),
		}},
		InPublic: tpm2.New2B(tmpl),
	}.Execute(s.tpm)
	if err != nil {
		return nil, nil, tpmErr("seal: create sealed object", err)
	}
	return rsp.OutPublic.Bytes(), rsp.OutPrivate.Buffer, nil
}

// load loads a sealed object; any failure of the TPM to accept it (integrity, wrong parent,
// malformed area) means the blob is damaged or belongs to another TPM.
func (s *Sealer) load(srk *srkHandle, pub, priv []byte, what string) (tpm2.NamedHandle, error) {
	rsp, err := tpm2.Load{
		ParentHandle: tpm2.AuthHandle{Handle: srk.Handle, Name: srk.Name, Auth: tpm2.PasswordAuth(nil)},
		InPrivate:    tpm2.TPM2BPrivate{Buffer: priv},
		InPublic:     tpm2.BytesAs2B[tpm2.TPMTPublic](pub),
	}.Execute(s.tpm)
	if err != nil {
		if _, ok := errors.AsType[tpm2.TPMRC](err); ok && !isDeviceCondition(err) {
			return tpm2.NamedHandle{}, fmt.Errorf("tpm: load %s (damaged, or sealed by another TPM): %w: %w", what, seal.ErrCorrupt, err)
		}
		return tpm2.NamedHandle{}, tpmErr("load "+what, err)
	}
	return tpm2.NamedHandle{Handle: rsp.ObjectHandle, Name: rsp.Name}, nil
}

// unsealWithPolicy satisfies obj's policy — PolicyPCR(approved state), PolicyAuthorize(signer),
// and PolicyAuthValue if withAuthValue — in a salted policy session that also encrypts the
// response, and returns the unsealed bytes.
func (s *Sealer) unsealWithPolicy(srk *srkHandle, obj tpm2.NamedHandle, b *blobV1, ap approval, av []byte, withAuthValue bool) ([]byte, error) {
	approved, err := approvedPolicy(b.pcrMask, ap.pcrDigest[:])
	if err != nil {
		return nil, fmt.Errorf("tpm: policy: %w", err)
	}
	// Have the TPM verify the approval and issue the ticket PolicyAuthorize needs. The key is
	// loaded in the owner hierarchy: a ticket from the null hierarchy is not accepted.
	ext, err := tpm2.LoadExternal{
		InPublic:  tpm2.New2B(signerTemplate(b.signerPub)),
		Hierarchy: tpm2.TPMRHOwner,
	}.Execute(s.tpm)
	if err != nil {
		return nil, tpmErr("load policy-signing key", err)
	}
	defer s.flush(ext.ObjectHandle)
	ver, err := tpm2.VerifySignature{
		KeyHandle: tpm2.NamedHandle{Handle: ext.ObjectHandle, Name: ext.Name},
		Digest:    tpm2.TPM2BDigest{Buffer: approvalHash(approved)},
		Signature: tpm2.TPMTSignature{
			SigAlg: tpm2.TPMAlgECDSA,
			Signature: tpm2.NewTPMUSignature(tpm2.TPMAlgECDSA, &tpm2.TPMSSignatureECC{
				Hash:       tpm2.TPMAlgSHA256,
				SignatureR: tpm2.TPM2BECCParameter{Buffer: ap.r[:]},
				SignatureS: tpm2.TPM2BECCParameter{Buffer: ap.s[:]},
			}),
		},
	}.Execute(s.tpm)
	if err != nil {
		if errors.Is(err, tpm2.TPMRCSignature) {
			return nil, fmt.Errorf("tpm: approval rejected by the TPM: %w: %w", seal.ErrCorrupt, err)
		}
		return nil, tpmErr("verify approval", err)
	}

	opts := []tpm2.AuthOption{tpm2.Salted(srk.Handle, srk.pub), tpm2.AESEncryption(128, tpm2.EncryptOut)}
	if withAuthValue {
		opts = append(opts, tpm2.Auth(av))
	}
	sess, closeSess, err := tpm2.PolicySession(s.tpm, tpm2.TPMAlgSHA256, 16, opts...)
	if err != nil {
		return nil, tpmErr("start policy session", err)
	}
	defer closeSess()
	if _, err := (tpm2.PolicyPCR{
		PolicySession: sess.Handle(),
		PcrDigest:     tpm2.TPM2BDigest{Buffer: ap.pcrDigest[:]},
		Pcrs:          selection(b.pcrMask),
	}).Execute(s.tpm); err != nil {
		if errors.Is(err, tpm2.TPMRCValue) {
			return nil, fmt.Errorf("tpm: PCRs changed since they were read: %w: %w", seal.ErrBootState, err)
		}
		return nil, tpmErr("PolicyPCR", err)
	}
	if _, err := (tpm2.PolicyAuthorize{
		PolicySession:  sess.Handle(),
		ApprovedPolicy: tpm2.TPM2BDigest{Buffer: approved},
		PolicyRef:      tpm2.TPM2BDigest{Buffer: policyRef},
		KeySign:        ext.Name,
		CheckTicket:    ver.Validation,
	}).Execute(s.tpm); err != nil {
		return nil, tpmErr("PolicyAuthorize", err)
	}
	if withAuthValue {
		if _, err := (tpm2.PolicyAuthValue{PolicySession: sess.Handle()}).Execute(s.tpm); err != nil {
			return nil, tpmErr("PolicyAuthValue", err)
		}
	}
	rsp, err := tpm2.Unseal{ItemHandle: tpm2.AuthHandle{Handle: obj.Handle, Name: obj.Name, Auth: sess}}.Execute(s.tpm)
	if err != nil {
		if errors.Is(err, tpm2.TPMRCPolicyFail) {
			// Load accepted the object and PolicyPCR accepted the boot state, so the session
			// digest can only differ from the object's policy if the blob was tampered with.
			return nil, fmt.Errorf("tpm: unseal: policy does not match the object: %w: %w", seal.ErrCorrupt, err)
		}
		return nil, tpmErr("unseal", err)
	}
	return rsp.OutData.Buffer, nil
}

// readPCRs reads the selected PCRs of the SHA-256 bank (a TPM returns at most 8 per command).
func (s *Sealer) readPCRs(mask uint32) (PCRValues, error) {
	out := PCRValues{}
	remaining := mask
	for remaining != 0 {
		rsp, err := tpm2.PCRRead{PCRSelectionIn: selection(remaining)}.Execute(s.tpm)
		if err != nil {
			return nil, tpmErr("read PCRs", err)
		}
		var got uint32
		for _, sel := range rsp.PCRSelectionOut.PCRSelections {
			if sel.Hash != tpm2.TPMAlgSHA256 {
				continue
			}
			for i, byt := range sel.PCRSelect {
				for bit := range 8 {
					if byt&(1<<bit) != 0 {
						got |= 1 << (8*i + bit)
					}
				}
			}
		}
		got &= remaining
		idx := 0
		for i := range 24 {
			if got&(1<<i) == 0 {
				continue
			}
			if idx >= len(rsp.PCRValues.Digests) {
				return nil, errors.New("tpm: read PCRs: fewer values than selected")
			}
			out[i] = slices.Clone(rsp.PCRValues.Digests[idx].Buffer)
			idx++
		}
		if got == 0 {
			return nil, fmt.Errorf("tpm: read PCRs %s: the SHA-256 bank is not active", maskString(remaining))
		}
		remaining &^= got
	}
	return out, nil
}

func (s *Sealer) flush(h tpm2.TPMHandle) {
	// Best effort: the resource manager flushes on close, and swtpm on restart.
	_, _ = tpm2.FlushContext{FlushHandle: h}.Execute(s.tpm)
}

// isDeviceCondition reports TPM answers that are about the device's state, not the blob.
func isDeviceCondition(err error) bool {
	rc, ok := errors.AsType[tpm2.TPMRC](err)
	return ok && (rc.IsWarning() || errors.Is(err, tpm2.TPMRCLockout) || errors.Is(err, tpm2.TPMRCInitialize) || errors.Is(err, tpm2.TPMRCFailure))
}

// tpmErr wraps a TPM error with the operation and the matching seal error.
func tpmErr(op string, err error) error {
	switch {
	case errors.Is(err, tpm2.TPMRCLockout):
		return fmt.Errorf("tpm: %s: %w: %w", op, seal.ErrLocked, err)
	case errors.Is(err, tpm2.TPMRCAuthFail), errors.Is(err, tpm2.TPMRCBadAuth):
		return fmt.Errorf("tpm: %s: %w: %w", op, seal.ErrWrongAuth, err)
	case errors.Is(err, tpm2.TPMRCPCRChanged):
		return fmt.Errorf("tpm: %s: %w: %w", op, seal.ErrBootState, err)
	}
	return fmt.Errorf("tpm: %s: %w", op, err)
}

func maskString(mask uint32) string {
	var pcrs []int
	for i := range 24 {
		if mask&(1<<i) != 0 {
			pcrs = append(pcrs, i)
		}
	}
	return fmt.Sprint(pcrs)
}
