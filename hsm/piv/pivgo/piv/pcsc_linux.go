// Copyright 2020 Google LLC
//
// Licensed under the Apache License, Version 2.0 (the "License");
// you may not use this file except in compliance with the License.
// You may obtain a copy of the License at
//
//     https://www.apache.org/licenses/LICENSE-2.0
//
// Unless required by applicable law or agreed to in writing, software
// distributed under the License is distributed on an "AS IS" BASIS,
// WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
// See the License for the specific language governing permissions and
// limitations under the License.

// Modified for anya: upstream's Linux transport (pcsc_unix.go + this file) called
// libpcsclite through cgo. This file replaces it with the pure-Go pcscd client in
// ../pcsclite, so that the package builds with CGO_ENABLED=0. The scContext / scHandle /
// scTx surface that piv.go and key.go use is unchanged; errors are *pcsclite.Error (which
// callers can inspect with errors.As or pcsclite.IsDeviceMissing) instead of *scErr.

package piv

import (
	"fmt"

	"github.com/go-piv/piv-go/v2/pcsclite"
)

type scContext struct {
	ctx *pcsclite.Context
}

func newSCContext() (*scContext, error) {
	ctx, err := pcsclite.EstablishContext()
	if err != nil {
		return nil, err
	}
	return &scContext{ctx: ctx}, nil
}

func (c *scContext) Close() error {
	return c.ctx.Release()
}

// ListReaders returns nil, nil when there are no readers, as upstream does on Linux.
func (c *scContext) ListReaders() ([]string, error) {
	return c.ctx.ListReaders()
}

type scHandle struct {
	h *pcsclite.Card
}

func (c *scContext) Connect(reader string) (*scHandle, error) {
	h, err := c.ctx.Connect(reader, pcsclite.ShareExclusive, pcsclite.ProtocolT1)
	if err != nil {
		return nil, err
	}
	return &scHandle{h}, nil
}

func (h *scHandle) Close() error {
	return h.h.Disconnect(pcsclite.LeaveCard)
}

type scTx struct {
	h *pcsclite.Card
}

func (h *scHandle) Begin() (*scTx, error) {
	if err := h.h.BeginTransaction(); err != nil {
		return nil, err
	}
	return &scTx{h.h}, nil
}

func (t *scTx) Close() error {
	return t.h.EndTransaction(pcsclite.LeaveCard)
}

func (t *scTx) transmit(req []byte) (more bool, b []byte, err error) {
	resp, err := t.h.Transmit(req)
	if err != nil {
		return false, nil, fmt.Errorf("transmitting request: %w", err)
	}
	respN := len(resp)
	if respN < 2 {
		return false, nil, fmt.Errorf("scard response too short: %d", respN)
	}
	sw1 := resp[respN-2]
	sw2 := resp[respN-1]
	if sw1 == 0x90 && sw2 == 0x00 {
		return false, resp[:respN-2], nil
	}
	if sw1 == 0x61 {
		return true, resp[:respN-2], nil
	}
	return false, nil, &apduErr{sw1, sw2}
}
