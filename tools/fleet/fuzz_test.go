package fleet

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	dev "github.com/anya-edge/anya/appliance/update/fleet"
)

// FuzzDeviceRequest feeds arbitrary Authorization headers and bodies to the device API (both
// endpoints). The server must never panic, must answer only with its documented statuses,
// and must accept a request only if its signature verifies for the body with the key of the
// device it names.
func FuzzDeviceRequest(f *testing.F) {
	h := newHarness(f)
	d := h.enrolled(h.token(TokenRequest{Uses: 2}), nil)
	pub := d.key.Public().(*ecdsa.PublicKey)
	now := h.clock.Now()
	report, _ := json.Marshal(d.report)
	valid := func(path string, body []byte) string {
		a, err := dev.SignRequest(d.key, rand.Reader, "POST", path, d.id, now, body)
		if err != nil {
			f.Fatal(err)
		}
		return a.Header()
	}
	pkix, _ := dev.MarshalPublicKey(d.key.Public())
	enroll, _ := json.Marshal(dev.EnrollRequest{Token: "x", PublicKey: pkix, Attestation: dev.AttestationSoftware})
	f.Add(false, valid(dev.CheckInPath, report), report)
	f.Add(false, valid(dev.CheckInPath, report), []byte(`{"arch":"amd64","target":{"counter":1,"state":"failed"}}`))
	f.Add(true, valid(dev.EnrollPath, enroll), enroll)
	f.Add(false, "", []byte("{}"))
	f.Add(false, dev.AuthScheme+" id=d-000000000000000000000000, ts=1, nonce=AAAAAAAAAAAAAAAAAAAAAA, sig=AAAAAAAAAAA", []byte("null"))
	f.Add(true, dev.AuthScheme+" id=,,,=", []byte(`{"public_key":"AAAA"}`))
	handler := h.srv.Handler()
	f.Fuzz(func(t *testing.T, isEnroll bool, auth string, body []byte) {
		path := dev.CheckInPath
		if isEnroll {
			path = dev.EnrollPath
		}
		req := httptest.NewRequest("POST", path, bytes.NewReader(body))
		req.Header.Set("Authorization", auth)
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK, http.StatusCreated:
			a, err := dev.ParseAuth(auth)
			if err != nil {
				t.Fatalf("accepted an unparsable authorization %q", auth)
			}
			if isEnroll {
				var er dev.EnrollRequest
				if json.Unmarshal(body, &er) != nil {
					t.Fatal("enrolled from a malformed body")
				}
				k, err := dev.ParsePublicKey(er.PublicKey)
				if err != nil || a.Verify(k, "POST", path, body) != nil {
					t.Fatal("enrolled without a valid signature")
				}
			} else if a.ID != d.id || a.Verify(pub, "POST", path, body) != nil {
				t.Fatalf("accepted a check-in without a valid signature: %q", auth)
			}
		case http.StatusBadRequest, http.StatusUnauthorized, http.StatusConflict, http.StatusRequestEntityTooLarge:
			var er dev.ErrorResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &er); err != nil || er.Code == "" {
				t.Fatalf("%d without an error code: %q", rec.Code, rec.Body.String())
			}
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body.String())
		}
	})
}
