package apiserver

import (
	"encoding/json"
	"fmt"
	"net/http"

	"weft.dev/weft/internal/api"
)

// FilesRequest is the body of POST /api/v1/apply/files: the files of one
// `weft apply -f DIR ...`, applied together, all or nothing.
type FilesRequest struct {
	Files []File `json:"files"`
}

// File is one file of a FilesRequest.
type File struct {
	// Name is shown in errors, e.g. "config/routes.yaml".
	Name string `json:"name"`
	// Content is YAML or JSON, as for POST /api/v1/apply.
	Content string `json:"content"`
}

// applyFiles decodes every file, then checks and stores all their objects
// in one transaction: one invalid file stores nothing. Errors name the
// file, the document, the object and the field.
func (h *handler) applyFiles(w http.ResponseWriter, r *http.Request) {
	var req FilesRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxApplyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("reading request: %v", err))
		return
	}
	var all []api.Located
	seen := map[api.Key]string{}
	for _, f := range req.Files {
		objs, err := api.DecodeLocated([]byte(f.Content))
		if err != nil {
			h.refuse(w, fmt.Errorf("%s: %w", f.Name, err))
			return
		}
		for _, o := range objs {
			o.Where = f.Name + ": " + o.Where
			k := api.KeyOf(o.Object)
			if prev, dup := seen[k]; dup {
				h.refuse(w, fmt.Errorf("%s: %s %q: duplicates %s", o.Where, k.Kind, k.Name, prev))
				return
			}
			seen[k] = o.Where
			all = append(all, o)
		}
	}
	h.applyObjects(w, all)
}
