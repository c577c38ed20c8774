package web

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Password rules and hashing parameters.
const (
	minPasswordChars = 10
	maxPasswordBytes = 1024

	passwordV1   = 1         // argon2id with the parameters stored in the record
	argonTime    = 2         // passes (OWASP minimum for m = 19 MiB)
	argonMemory  = 19 * 1024 // KiB
	argonThreads = 1
	argonKeyLen  = 32
	saltLen      = 16

	// maxConcurrentHashes bounds the memory spent on hashing (19 MiB each).
	maxConcurrentHashes = 2
)

// passwordHash is the stored form of the admin password.
type passwordHash struct {
	Version int    `json:"v"`
	Time    uint32 `json:"t"`
	Memory  uint32 `json:"m"` // KiB
	Threads uint8  `json:"p"`
	Salt    []byte `json:"salt"`
	Hash    []byte `json:"hash"`
}

// checkPassword returns a message for the user when password is not acceptable.
func checkPassword(password string) string {
	n := utf8.RuneCountInString(password)
	switch {
	case strings.TrimSpace(password) == "":
		return "Choose a password."
	case n < minPasswordChars:
		return fmt.Sprintf("The password is too short: use at least %d characters (this one has %d).", minPasswordChars, n)
	case len(password) > maxPasswordBytes:
		return fmt.Sprintf("The password is too long: use at most %d bytes.", maxPasswordBytes)
	}
	return ""
}

// hashPassword derives a new hash of password with a fresh salt.
func (s *Server) hashPassword(ctx context.Context, password string) (passwordHash, error) {
	h := passwordHash{Version: passwordV1, Time: argonTime, Memory: argonMemory, Threads: argonThreads,
		Salt: make([]byte, saltLen)}
	rand.Read(h.Salt)
	key, err := s.argon(ctx, password, h)
	if err != nil {
		return passwordHash{}, err
	}
	h.Hash = key
	return h, nil
}

// verifyPassword reports whether password matches h, comparing in constant time.
func (s *Server) verifyPassword(ctx context.Context, h passwordHash, password string) (bool, error) {
	if h.Version != passwordV1 {
		return false, fmt.Errorf("verify password: unknown hash version %d", h.Version)
	}
	if h.Time < 1 || h.Time > 16 || h.Memory < 8 || h.Memory > 1<<20 || h.Threads < 1 ||
		len(h.Salt) < 8 || len(h.Hash) < 16 || len(h.Hash) > 64 {
		return false, fmt.Errorf("verify password: stored hash has invalid parameters")
	}
	if len(password) > maxPasswordBytes {
		return false, nil
	}
	key, err := s.argon(ctx, password, h)
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(key, h.Hash) == 1, nil
}

// argon computes argon2id with h's parameters, at most maxConcurrentHashes at a time.
func (s *Server) argon(ctx context.Context, password string, h passwordHash) ([]byte, error) {
	select {
	case s.hashing <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("wait to hash password: %w", ctx.Err())
	}
	defer func() { <-s.hashing }()
	keyLen := uint32(argonKeyLen)
	if len(h.Hash) > 0 {
		keyLen = uint32(len(h.Hash))
	}
	return argon2.IDKey([]byte(password), h.Salt, h.Time, h.Memory, h.Threads, keyLen), nil
}
