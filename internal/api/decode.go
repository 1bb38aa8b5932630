package api

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// maxDocumentSize bounds one YAML document.
const maxDocumentSize = 4 << 20

// Decode parses data — one or more YAML documents separated by "---", a JSON
// object, or a v1 List — into defaulted, validated objects. Decoding is
// strict: unknown or duplicate fields are errors. Namespaced objects without
// a namespace land in "default". An error names the document (counted from 1
// among non-empty documents), the object and the field, e.g.
//
//	document 2: HTTPRoute "web": spec.rules[0].backendRefs[1].weight: must be between 0 and 1000000
func Decode(data []byte) ([]Object, error) {
	located, err := DecodeLocated(data)
	if err != nil {
		return nil, err
	}
	out := make([]Object, len(located))
	for i, l := range located {
		out[i] = l.Object
	}
	return out, nil
}

// Located is a decoded object and where it was found in its input, e.g.
// "document 2" or "document 1: items[3]".
type Located struct {
	Object Object
	Where  string
}

// DecodeLocated is Decode that also says where each object was found, so
// that later checks can name the document too.
func DecodeLocated(data []byte) ([]Located, error) {
	docs, err := splitDocuments(data)
	if err != nil {
		return nil, err
	}
	var out []Located
	seen := map[Key]string{}
	for i, doc := range docs {
		where := fmt.Sprintf("document %d", i+1)
		objs, err := decodeDocument(doc, where)
		if err != nil {
			return nil, err
		}
		for _, o := range objs {
			k := KeyOf(o.obj)
			if prev, dup := seen[k]; dup {
				return nil, fmt.Errorf("%s: %s %q: duplicates %s", o.where, k.Kind, k.Name, prev)
			}
			seen[k] = o.where
			out = append(out, Located{o.obj, o.where})
		}
	}
	return out, nil
}

type located struct {
	obj   Object
	where string
}

// splitDocuments returns the non-empty documents of data as JSON.
func splitDocuments(data []byte) ([][]byte, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		// A JSON stream: one or more concatenated objects.
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		var docs [][]byte
		for i := 1; ; i++ {
			var raw json.RawMessage
			if err := dec.Decode(&raw); errors.Is(err, io.EOF) {
				return docs, nil
			} else if err != nil {
				if bytes.Contains(trimmed, []byte("\n---")) {
					// JSON documents separated by YAML's "---" (JSON is
					// YAML): read them as YAML.
					break
				}
				return nil, fmt.Errorf("document %d: invalid JSON: %w", i, err)
			}
			docs = append(docs, raw)
		}
	}
	r := utilyaml.NewYAMLReader(bufio.NewReaderSize(bytes.NewReader(data), 4096))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: reading YAML: %w", len(docs)+1, err)
		}
		if len(doc) > maxDocumentSize {
			return nil, fmt.Errorf("document %d: larger than %d bytes", len(docs)+1, maxDocumentSize)
		}
		if emptyYAML(doc) {
			continue
		}
		j, err := yaml.YAMLToJSONStrict(doc)
		if err != nil {
			return nil, fmt.Errorf("document %d: invalid YAML: %w", len(docs)+1, err)
		}
		docs = append(docs, j)
	}
}

// emptyYAML reports whether doc holds only blank lines, comments and
// document markers.
func emptyYAML(doc []byte) bool {
	for line := range strings.SplitSeq(string(doc), "\n") {
		l := strings.TrimSpace(line)
		if l != "" && !strings.HasPrefix(l, "#") && l != "---" && l != "..." {
			return false
		}
	}
	return true
}

type header struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
}

// readHeader extracts apiVersion, kind and name without failing on a badly
// typed name.
func readHeader(j []byte) (header, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(j, &raw); err != nil || raw == nil {
		return header{}, errors.New("must be an object with apiVersion, kind, metadata and spec")
	}
	var h header
	for _, f := range []struct {
		name string
		dst  *string
	}{{"apiVersion", &h.APIVersion}, {"kind", &h.Kind}} {
		v, ok := raw[f.name]
		if !ok {
			return h, fmt.Errorf("%s: required", f.name)
		}
		if err := json.Unmarshal(v, f.dst); err != nil || *f.dst == "" {
			return h, fmt.Errorf("%s: must be a non-empty string", f.name)
		}
	}
	if m, ok := raw["metadata"]; ok {
		_ = json.Unmarshal(m, &h.Metadata) // a bad name is reported by the full decode
	}
	return h, nil
}

func decodeDocument(j []byte, where string) ([]located, error) {
	h, err := readHeader(j)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	if h.Kind == "List" && h.APIVersion == CoreV1 {
		var list struct {
			Items []json.RawMessage `json:"items"`
		}
		if err := json.Unmarshal(j, &list); err != nil {
			return nil, fmt.Errorf("%s: List: items: %w", where, err)
		}
		var out []located
		for i, item := range list.Items {
			w := fmt.Sprintf("%s: items[%d]", where, i)
			objs, err := decodeDocument(item, w)
			if err != nil {
				return nil, err
			}
			out = append(out, objs...)
		}
		return out, nil
	}
	obj, err := decodeObject(j, h)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	return []located{{obj, where}}, nil
}

func decodeObject(j []byte, h header) (Object, error) {
	info, err := lookupType(h.APIVersion, h.Kind)
	if err != nil {
		return nil, err
	}
	obj := info.newObject()
	strictErrs, err := sigsjson.UnmarshalStrict(j, obj)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %s", h.Kind, h.Metadata.Name, describeJSONError(err))
	}
	if len(strictErrs) > 0 {
		var e errs
		for _, se := range strictErrs {
			var fe sigsjson.FieldError
			if errors.As(se, &fe) {
				msg := strings.TrimSpace(strings.TrimSuffix(se.Error(), fmt.Sprintf("%q", fe.FieldPath())))
				p := fieldPath(fe.FieldPath())
				if p == "" {
					p = `""` // a key that is the empty string
				}
				e.add(p, "%s", msg)
			} else {
				e.add("(object)", "%s", se.Error())
			}
		}
		return nil, &InvalidError{Kind: info.Kind, Name: h.Metadata.Name, Errors: e}
	}
	if info.Namespaced && obj.GetNamespace() == "" {
		obj.SetNamespace(DefaultNS)
	}
	if svc, ok := obj.(*corev1.Service); ok {
		defaultService(svc)
	}
	if d, ok := obj.(interface{ Default() }); ok {
		d.Default()
	}
	if err := Validate(obj); err != nil {
		return nil, err
	}
	return obj, nil
}

// describeJSONError turns a JSON type error into "field: message".
func describeJSONError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		// Field is a dotted Go path that includes embedded struct names
		// (BackendRef.BackendObjectReference); JSON names are lowerCamel, so
		// drop the capitalised parts.
		var parts []string
		for p := range strings.SplitSeq(te.Field, ".") {
			if p != "" && !(p[0] >= 'A' && p[0] <= 'Z') {
				parts = append(parts, p)
			}
		}
		return fmt.Sprintf("%s: cannot be %s, want %s", strings.Join(parts, "."), te.Value, jsonTypeName(te.Type.String()))
	}
	return err.Error()
}

func jsonTypeName(goType string) string {
	switch {
	case strings.Contains(goType, "int"):
		return "an integer"
	case strings.Contains(goType, "float"):
		return "a number"
	case strings.Contains(goType, "string") || strings.HasSuffix(goType, "Name") || strings.HasSuffix(goType, "Kind"):
		return "a string"
	case strings.HasPrefix(goType, "[]"):
		return "a list"
	case strings.HasPrefix(goType, "map["):
		return "a mapping"
	case goType == "bool":
		return "a boolean"
	}
	return goType
}

func lookupType(apiVersion, kind string) (KindInfo, error) {
	for _, k := range kinds {
		if k.Kind == kind {
			if k.APIVersion != apiVersion {
				return KindInfo{}, fmt.Errorf("apiVersion: %s is %q, got %q", kind, k.APIVersion, apiVersion)
			}
			return k, nil
		}
	}
	var names []string
	for _, k := range kinds {
		names = append(names, k.APIVersion+" "+k.Kind)
	}
	return KindInfo{}, fmt.Errorf("kind: unsupported kind %q (supported: %s)", kind, strings.Join(names, ", "))
}

// Unmarshal decodes one object as the store keeps it (JSON with apiVersion
// and kind) without strict checks, defaulting or validation, so that stored
// objects stay readable as the types evolve.
func Unmarshal(j []byte) (Object, error) {
	h, err := readHeader(j)
	if err != nil {
		return nil, err
	}
	info, err := lookupType(h.APIVersion, h.Kind)
	if err != nil {
		return nil, err
	}
	obj := info.newObject()
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(j, obj); err != nil {
		return nil, fmt.Errorf("%s %q: %w", h.Kind, h.Metadata.Name, err)
	}
	SetTypeMeta(obj)
	return obj, nil
}

// Marshal encodes o as JSON with its apiVersion and kind set.
func Marshal(o Object) ([]byte, error) {
	SetTypeMeta(o)
	return json.Marshal(o)
}

func schemaGVK(k KindInfo) schema.GroupVersionKind {
	return schema.FromAPIVersionAndKind(k.APIVersion, k.Kind)
}

// defaultService applies the Kubernetes defaults weft relies on: protocol
// TCP and targetPort equal to port.
func defaultService(s *corev1.Service) {
	for i := range s.Spec.Ports {
		p := &s.Spec.Ports[i]
		if p.Protocol == "" {
			p.Protocol = corev1.ProtocolTCP
		}
		if p.TargetPort.Type == intstr.Int && p.TargetPort.IntVal == 0 {
			p.TargetPort = intstr.FromInt32(p.Port)
		}
	}
}
