package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/anya-edge/anya/appliance/control"
	"github.com/anya-edge/anya/appliance/update/agent"
	"github.com/anya-edge/anya/appliance/update/release"
)

// DefaultMaxUpload bounds an uploaded bundle when UpdateConfig.MaxUpload is zero: a slot's
// system image (256 MiB partitions) and its boot files, with room to spare.
const DefaultMaxUpload = 400 << 20

// spoolReserve is the space an upload must leave free on the data partition.
const spoolReserve = 32 << 20

// installTimeout bounds one install started from the page.
const installTimeout = 30 * time.Minute

// uploadReadTimeout replaces the server's read timeout for the body of an upload.
const uploadReadTimeout = 30 * time.Minute

// UpdateOffer is a release the fleet server offers this box.
type UpdateOffer struct {
	Version string `json:"version"`
	Counter uint64 `json:"counter"`
	Channel string `json:"channel,omitempty"`
	// Source opens where the release's bundle is (release.NewHTTP on the fleet's payload
	// address).
	Source func(ctx context.Context) (release.Fetcher, error) `json:"-"`
}

// UpdateConfig configures the update page and API.
type UpdateConfig struct {
	// Agent is the box's update agent; nil when it could not start (Unavailable says why).
	Agent       *agent.Agent
	Unavailable string
	// Offer, when set, asks the fleet server which release it offers this box (nil: there is
	// none, and the page says so). The fleet client (appliance/update/fleet) provides it.
	Offer func(ctx context.Context) (*UpdateOffer, error)
	// Fleet, when set, is the check-in loop: the page enrolls the box with an update server
	// and shows its check-ins. nil: the page offers no enrollment.
	Fleet Fleet
	// USB, when set, finds a bundle on a USB stick; close releases it. nil: the page says
	// installing from a USB stick is not available.
	USB func(ctx context.Context) (src release.Fetcher, close func(), err error)
	// SpoolDir is where an upload is written before it is verified and installed: a
	// directory on the data partition (the default temporary directory is in RAM).
	SpoolDir string
	// MaxUpload bounds an uploaded bundle; 0 means DefaultMaxUpload.
	MaxUpload int64
}

func (c *UpdateConfig) maxUpload() int64 {
	if c.MaxUpload > 0 {
		return c.MaxUpload
	}
	return DefaultMaxUpload
}

// updateRefusal is why an install cannot start or did not succeed: an HTTP status and a
// sentence for the owner.
type updateRefusal struct {
	status int
	msg    string
}

func (e *updateRefusal) Error() string { return e.msg }

// installable says why no install can start now (nil: one can).
func (s *Server) installable() *updateRefusal {
	u := s.update
	if u.Agent == nil {
		msg := "Updates are not available: the update agent did not start."
		if u.Unavailable != "" {
			msg = "Updates are not available: " + u.Unavailable + "."
		}
		return &updateRefusal{http.StatusServiceUnavailable, msg}
	}
	st, err := u.Agent.Status()
	if err != nil {
		return &updateRefusal{http.StatusInternalServerError, "The update records could not be read: " + err.Error()}
	}
	switch {
	case st.Boot.Unmanaged || st.Slot == "":
		return &updateRefusal{http.StatusConflict, unmanagedText}
	case !st.Enabled:
		return &updateRefusal{http.StatusConflict, disabledText(st.Disabled)}
	case st.Boot.Trial():
		return &updateRefusal{http.StatusConflict, onTrialText}
	}
	return nil
}

const (
	unmanagedText = "Updates are not available on this host: anyad runs here in development mode, not from an update slot of the box."
	onTrialText   = "The running version is still being checked after its update. Another update can be installed once it is committed (in a few minutes)."
	busyText      = "Another update is being installed. Wait until it has finished."
)

func disabledText(why string) string {
	return "Updates are disabled on this box: " + strings.TrimPrefix(why, "updates disabled: ") + "."
}

// refusalOf turns an error of the agent into a status and a sentence.
func refusalOf(err error, att *agent.Attempt) *updateRefusal {
	var ur *updateRefusal
	switch {
	case errors.As(err, &ur):
		return ur
	case errors.Is(err, agent.ErrUnmanaged):
		return &updateRefusal{http.StatusConflict, unmanagedText}
	case errors.Is(err, agent.ErrDisabled):
		return &updateRefusal{http.StatusConflict, disabledText(err.Error())}
	case errors.Is(err, agent.ErrOnTrial):
		return &updateRefusal{http.StatusConflict, onTrialText}
	case errors.Is(err, agent.ErrBusy):
		return &updateRefusal{http.StatusConflict, busyText}
	case errors.Is(err, agent.ErrUpToDate):
		return &updateRefusal{http.StatusConflict, "This version is already running. Tick “install anyway” to install it again."}
	case errors.Is(err, agent.ErrFailedBefore):
		return &updateRefusal{http.StatusConflict, sentence(strings.TrimPrefix(err.Error(), agent.ErrFailedBefore.Error()+": ")) +
			" This release already failed on this box; tick “install anyway” to try it again."}
	}
	if reason := release.ReasonOf(err); reason != 0 {
		status := http.StatusUnprocessableEntity
		if reason == release.ReasonUnavailable {
			status = http.StatusBadGateway
		}
		return &updateRefusal{status, "The update was refused: " + strings.TrimSuffix(reason.Text(), ".") + ". Nothing was written to the box."}
	}
	if att != nil {
		return &updateRefusal{http.StatusInternalServerError, sentence(att.Message()) + " The running version was not touched; the update can be tried again."}
	}
	return &updateRefusal{http.StatusInternalServerError, "The update failed: " + err.Error()}
}

// installed is the outcome of an install started from the page.
type installed struct {
	Attempt   *agent.Attempt `json:"attempt"`
	Rebooting bool           `json:"rebooting"`
	// RebootErr is set when the box could not restart by itself: the owner restarts it.
	RebootErr string `json:"reboot_error,omitempty"`
}

// install verifies and installs the release src offers, then restarts the box so that the
// new slot is tried. It runs on a context of its own: a browser that goes away does not stop
// an install half-way (which would be safe, but a waste).
func (s *Server) install(r *http.Request, src release.Fetcher, o agent.InstallOptions) (installed, *updateRefusal) {
	if ref := s.installable(); ref != nil {
		return installed{}, ref
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), installTimeout)
	defer cancel()
	s.log.Info("update requested", "source", o.Source, "force", o.Force, "client", clientAddr(r))
	att, err := s.update.Agent.Update(ctx, src, o)
	if err != nil {
		s.log.Warn("update not installed", "source", o.Source, "err", err)
		return installed{Attempt: att}, refusalOf(err, att)
	}
	res := installed{Attempt: att, Rebooting: true}
	if err := s.sys.Reboot(ctx); err != nil {
		s.log.Error("restart after the update", "err", err)
		res.Rebooting, res.RebootErr = false, err.Error()
	}
	return res, nil
}

// errUploadTooLarge and errNoSpace end an upload.
var (
	errUploadTooLarge = errors.New("upload too large")
	errNoSpace        = errors.New("not enough free space")
)

// spool writes an uploaded bundle to an unlinked temporary file on the data partition and
// returns it positioned at its start: the agent reads it twice (verify everything, then
// write), and a file that is not linked anywhere cannot be left behind by a crash.
func (s *Server) spool(src io.Reader, declared int64) (*os.File, error) {
	dir := s.update.SpoolDir
	if dir == "" {
		dir = os.TempDir()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool directory: %w", err)
	}
	limit := s.update.maxUpload()
	if declared > limit {
		return nil, errUploadTooLarge
	}
	max := limit
	if _, free, err := control.DiskUsage(dir); err == nil {
		room := int64(free) - spoolReserve
		if room < max {
			max = room
		}
		if max <= 0 || declared > max {
			return nil, errNoSpace
		}
	}
	f, err := os.CreateTemp(dir, "upload-*.tar")
	if err != nil {
		return nil, fmt.Errorf("spool file: %w", err)
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, fmt.Errorf("spool file: %w", err)
	}
	n, err := io.Copy(f, io.LimitReader(src, max+1))
	if err == nil && n > max {
		if max < limit {
			err = errNoSpace
		} else {
			err = errUploadTooLarge
		}
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			return nil, errUploadTooLarge
		case errors.Is(err, syscall.ENOSPC):
			return nil, errNoSpace
		}
		return nil, err
	}
	return f, nil
}

// upload is a bundle received from the page or the API.
type upload struct {
	f     *os.File
	force bool
}

// readUpload reads an upload: a multipart form (fields csrf, for the page the first one,
// then force, then the file bundle), or for the API also a plain tar body (force=1 in the
// query). The bundle is spooled (see spool).
func (s *Server) readUpload(w http.ResponseWriter, r *http.Request, api bool) (*upload, *updateRefusal) {
	// The server's read timeout is meant for forms; a bundle over a slow link takes longer.
	rc := http.NewResponseController(w)
	if err := rc.SetReadDeadline(time.Now().Add(uploadReadTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		s.log.Warn("upload: extend the read deadline", "err", err)
	}
	up := &upload{force: api && r.URL.Query().Get("force") == "1"}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "multipart/form-data" {
		if !api {
			return nil, &updateRefusal{http.StatusBadRequest, "The form must be sent as multipart/form-data."}
		}
		f, err := s.spool(r.Body, r.ContentLength)
		if err != nil {
			return nil, spoolRefusal(err)
		}
		up.f = f
		return up, nil
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, &updateRefusal{http.StatusBadRequest, "The form could not be read: " + err.Error()}
	}
	// The API's token, and a script's, came in the X-CSRF-Token header, which the guard checked.
	csrfChecked := api || r.Header.Get("X-CSRF-Token") != ""
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return nil, &updateRefusal{http.StatusBadRequest, "No bundle was sent: choose the bundle's .tar file."}
		}
		if err != nil {
			return nil, partRefusal(err)
		}
		name := p.FormName()
		if !csrfChecked {
			// The page's form puts the token first, so the guard need not read the body (it
			// would spool the whole bundle to read one field).
			if name != "csrf" || !sessionFrom(r.Context()).validCSRF(readField(p)) {
				s.log.Warn("refused upload without a valid CSRF token", "client", clientAddr(r))
				return nil, &updateRefusal{http.StatusForbidden, "missing or invalid CSRF token; reload the page and try again"}
			}
			csrfChecked = true
			continue
		}
		switch name {
		case "force":
			up.force = readField(p) != ""
		case "bundle":
			f, err := s.spool(p, -1)
			if err != nil {
				if errors.As(err, new(*http.MaxBytesError)) {
					err = errUploadTooLarge
				}
				return nil, spoolRefusal(err)
			}
			up.f = f
			return up, nil
		default:
			readField(p) // csrf again, or a field a later form adds
		}
	}
}

// readField reads a small form field.
func readField(p *multipart.Part) string {
	b, _ := io.ReadAll(io.LimitReader(p, 256))
	return strings.TrimSpace(string(b))
}

func partRefusal(err error) *updateRefusal {
	if errors.As(err, new(*http.MaxBytesError)) {
		return spoolRefusal(errUploadTooLarge)
	}
	return &updateRefusal{http.StatusBadRequest, "The form could not be read: " + err.Error()}
}

func spoolRefusal(err error) *updateRefusal {
	switch {
	case errors.Is(err, errUploadTooLarge):
		return &updateRefusal{http.StatusRequestEntityTooLarge, "The file is too large to be an update bundle."}
	case errors.Is(err, errNoSpace):
		return &updateRefusal{http.StatusInsufficientStorage, "There is not enough free space on the data partition to receive the bundle."}
	}
	return &updateRefusal{http.StatusInternalServerError, "The bundle could not be received: " + err.Error()}
}

// installUpload installs an uploaded bundle.
func (s *Server) installUpload(w http.ResponseWriter, r *http.Request, api bool) (installed, *updateRefusal) {
	if ref := s.installable(); ref != nil {
		return installed{}, ref // before reading a byte of the body
	}
	if !s.uploading.CompareAndSwap(false, true) {
		return installed{}, &updateRefusal{http.StatusConflict, busyText}
	}
	defer s.uploading.Store(false)
	up, ref := s.readUpload(w, r, api)
	if ref != nil {
		return installed{}, ref
	}
	defer up.f.Close()
	// The spooled file can seek: the tar is read once to verify every payload, then again to
	// write them (the agent's default, which leaves every slot untouched when one is bad).
	return s.install(r, release.NewTar(up.f), agent.InstallOptions{Source: "upload", Force: up.force})
}

// offer asks the fleet hook for the release it offers; nil with no error when there is none
// or no fleet is configured.
func (s *Server) offer(ctx context.Context) (*UpdateOffer, error) {
	if s.update.Offer == nil {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	o, err := s.update.Offer(ctx)
	if err != nil {
		return nil, fmt.Errorf("ask the update server: %w", err)
	}
	return o, nil
}

// installOffer installs the release the fleet server offers.
func (s *Server) installOffer(r *http.Request, force bool) (installed, *updateRefusal) {
	if ref := s.installable(); ref != nil {
		return installed{}, ref
	}
	o, err := s.offer(r.Context())
	if err != nil {
		return installed{}, &updateRefusal{http.StatusBadGateway, "The update server could not be asked: " + err.Error()}
	}
	if o == nil || o.Source == nil {
		return installed{}, &updateRefusal{http.StatusConflict, "No update is offered to this box."}
	}
	src, err := o.Source(r.Context())
	if err != nil {
		return installed{}, &updateRefusal{http.StatusBadGateway, "The update could not be fetched: " + err.Error()}
	}
	return s.install(r, src, agent.InstallOptions{Source: "fleet", Force: force})
}

// installUSB installs the bundle on a USB stick (the hook finds it).
func (s *Server) installUSB(r *http.Request, force bool) (installed, *updateRefusal) {
	if s.update.USB == nil {
		return installed{}, &updateRefusal{http.StatusNotImplemented, "Installing from a USB stick is not available on this box yet."}
	}
	if ref := s.installable(); ref != nil {
		return installed{}, ref
	}
	src, closeSrc, err := s.update.USB(r.Context())
	if err != nil {
		return installed{}, &updateRefusal{http.StatusConflict, "No update bundle was found on a USB stick: " + err.Error()}
	}
	defer closeSrc()
	return s.install(r, src, agent.InstallOptions{Source: "usb", Force: force})
}
