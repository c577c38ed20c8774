package web

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/anya-edge/anya/appliance/recovery/backup"
)

// Backups (package appliance/recovery/backup): the page lists the box's encrypted backups,
// on the data partition and on the USB sticks plugged in, says how the last one went, takes
// one on request and lets the owner download one. The files are encrypted to the wallet's
// backup key (only the mnemonic opens them), so a download needs a session like every page,
// and nothing more.

// Backups is what the pages need of the backup scheduler (*backup.Scheduler).
type Backups interface {
	Last() backup.Result
	BackupNow(reason string) backup.Result
	Dir() string        // the data partition's backups
	CopyDirs() []string // the backups directories of the USB sticks plugged in
}

// backupsView is GET /api/backups and the page's data.
type backupsView struct {
	Last   backup.Result `json:"last"`
	Local  []backup.File `json:"local"`
	Sticks []stickView   `json:"sticks"`
}

type stickView struct {
	Name    string        `json:"name"` // the stick's label
	Backups []backup.File `json:"backups"`
	Problem string        `json:"problem,omitempty"`
}

type backupsData struct {
	layoutData
	backupsView
	Err string
}

// stickName names a stick by its mount directory (MountRoot/<LABEL>/backups).
func stickName(dir string) string { return filepath.Base(filepath.Dir(dir)) }

func (s *Server) backupsView() (backupsView, error) {
	v := backupsView{Last: s.backups.Last()}
	var err error
	if v.Local, err = backup.List(s.backups.Dir()); err != nil {
		return v, err
	}
	for _, dir := range s.backups.CopyDirs() {
		st := stickView{Name: stickName(dir)}
		if st.Backups, err = backup.List(dir); err != nil {
			st.Problem = err.Error()
		}
		v.Sticks = append(v.Sticks, st)
	}
	return v, nil
}

func (s *Server) renderBackups(w http.ResponseWriter, r *http.Request, status int, msg string) {
	v, err := s.backupsView()
	if err != nil {
		s.internalError(w, r, false, "list backups", err)
		return
	}
	s.render(w, status, "backups", backupsData{layoutData: s.layout(r, "Backups", false), backupsView: v, Err: msg})
}

func (s *Server) backupsPage(w http.ResponseWriter, r *http.Request) {
	s.renderBackups(w, r, http.StatusOK, "")
}

func (s *Server) backupNowForm(w http.ResponseWriter, r *http.Request) {
	res := s.backups.BackupNow("the page")
	if res.Err != nil {
		s.renderBackups(w, r, http.StatusInternalServerError, "The backup failed: "+res.Error)
		return
	}
	http.Redirect(w, r, "/backups", http.StatusSeeOther)
}

func (s *Server) apiBackups(w http.ResponseWriter, r *http.Request) {
	v, err := s.backupsView()
	if err != nil {
		s.internalError(w, r, true, "list backups", err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) apiBackupNow(w http.ResponseWriter, r *http.Request) {
	res := s.backups.BackupNow("the page")
	if res.Err != nil {
		writeError(w, http.StatusInternalServerError, "backup: "+res.Error)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// backupDownload sends one of the data partition's backups. The name must be one List
// returns: nothing else of the directory, and nothing outside it, can be asked for.
func (s *Server) backupDownload(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	list, err := backup.List(s.backups.Dir())
	if err != nil {
		s.internalError(w, r, false, "list backups", err)
		return
	}
	if strings.ContainsAny(name, `/\`) || !slices.ContainsFunc(list, func(f backup.File) bool { return f.Name == name }) {
		s.errorPage(w, r, http.StatusNotFound, "No such backup", "The box has no backup named "+name+".")
		return
	}
	f, err := os.Open(filepath.Join(s.backups.Dir(), name))
	if err != nil {
		s.internalError(w, r, false, "open backup", err)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		s.internalError(w, r, false, "open backup", err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", name))
	http.ServeContent(w, r, name, fi.ModTime(), f)
}
