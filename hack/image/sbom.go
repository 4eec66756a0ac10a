package main

import (
	"debug/buildinfo"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// An SPDX 2.3 document (JSON) of the Go modules linked into the image's
// binaries, read from their embedded build information (what `go version
// -m` prints). It lists what a vulnerability scanner needs: module path,
// version and a purl.
type spdxDocument struct {
	SPDXVersion       string             `json:"spdxVersion"`
	DataLicense       string             `json:"dataLicense"`
	SPDXID            string             `json:"SPDXID"`
	Name              string             `json:"name"`
	DocumentNamespace string             `json:"documentNamespace"`
	CreationInfo      spdxCreationInfo   `json:"creationInfo"`
	Packages          []spdxPackage      `json:"packages"`
	Relationships     []spdxRelationship `json:"relationships"`
}

type spdxCreationInfo struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
}

type spdxPackage struct {
	Name             string       `json:"name"`
	SPDXID           string       `json:"SPDXID"`
	VersionInfo      string       `json:"versionInfo"`
	DownloadLocation string       `json:"downloadLocation"`
	PrimaryPurpose   string       `json:"primaryPackagePurpose,omitempty"`
	ExternalRefs     []spdxExtRef `json:"externalRefs,omitempty"`
}

type spdxExtRef struct {
	Category string `json:"referenceCategory"`
	Type     string `json:"referenceType"`
	Locator  string `json:"referenceLocator"`
}

type spdxRelationship struct {
	Element string `json:"spdxElementId"`
	Type    string `json:"relationshipType"`
	Related string `json:"relatedSpdxElement"`
}

// SBOMPath is where the SBOM of platform p is written.
func SBOMPath(dir string, p Platform) string {
	return filepath.Join(dir, fmt.Sprintf("sbom-%s-%s.spdx.json", p.OS, p.Arch))
}

func writeSBOM(o Options, p Platform, bins map[string]string) error {
	doc := spdxDocument{
		SPDXVersion:       "SPDX-2.3",
		DataLicense:       "CC0-1.0",
		SPDXID:            "SPDXRef-DOCUMENT",
		Name:              fmt.Sprintf("instagram-operator-%s-%s-%s", o.Version, p.OS, p.Arch),
		DocumentNamespace: fmt.Sprintf("https://github.com/leadchat/instagram-operator/sbom/%s/%s/%s/%s", o.Version, o.Revision, p.OS, p.Arch),
		CreationInfo: spdxCreationInfo{
			Created:  epoch().Format("2006-01-02T15:04:05Z"),
			Creators: []string{"Tool: instagram-operator-hack-image"},
		},
	}
	image := spdxPackage{
		Name: "instagram-operator", SPDXID: "SPDXRef-Image", VersionInfo: o.Version,
		DownloadLocation: "https://github.com/leadchat/instagram-operator", PrimaryPurpose: "CONTAINER",
	}
	doc.Packages = append(doc.Packages, image)
	doc.Relationships = append(doc.Relationships, spdxRelationship{"SPDXRef-DOCUMENT", "DESCRIBES", image.SPDXID})

	modules := map[string]string{} // path -> version
	var goVersion string
	for _, name := range Binaries {
		info, err := buildinfo.ReadFile(bins[name])
		if err != nil {
			return fmt.Errorf("read build info of %s: %w", name, err)
		}
		goVersion = info.GoVersion
		id := "SPDXRef-Binary-" + name
		doc.Packages = append(doc.Packages, spdxPackage{Name: name, SPDXID: id, VersionInfo: o.Version, DownloadLocation: "NOASSERTION", PrimaryPurpose: "APPLICATION"})
		doc.Relationships = append(doc.Relationships, spdxRelationship{image.SPDXID, "CONTAINS", id})
		for _, dep := range info.Deps {
			if dep.Replace != nil {
				dep = dep.Replace
			}
			modules[dep.Path] = dep.Version
		}
	}
	paths := make([]string, 0, len(modules))
	for p := range modules {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	stdlib := spdxPackage{Name: "stdlib", SPDXID: "SPDXRef-Go-stdlib", VersionInfo: goVersion, DownloadLocation: "https://go.dev/dl/",
		ExternalRefs: []spdxExtRef{{"PACKAGE-MANAGER", "purl", "pkg:golang/stdlib@" + strings.TrimPrefix(goVersion, "go")}}}
	doc.Packages = append(doc.Packages, stdlib)
	doc.Relationships = append(doc.Relationships, spdxRelationship{image.SPDXID, "CONTAINS", stdlib.SPDXID})
	for i, path := range paths {
		pkg := spdxPackage{
			Name: path, SPDXID: fmt.Sprintf("SPDXRef-Module-%d", i), VersionInfo: modules[path],
			DownloadLocation: "https://proxy.golang.org/" + escapeModulePath(path) + "/@v/" + modules[path] + ".zip",
			ExternalRefs:     []spdxExtRef{{"PACKAGE-MANAGER", "purl", "pkg:golang/" + path + "@" + modules[path]}},
		}
		doc.Packages = append(doc.Packages, pkg)
		doc.Relationships = append(doc.Relationships, spdxRelationship{image.SPDXID, "CONTAINS", pkg.SPDXID})
	}
	if err := os.MkdirAll(o.SBOMDir, 0o755); err != nil {
		return err
	}
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(SBOMPath(o.SBOMDir, p), append(data, '\n'), 0o644)
}

// escapeModulePath is the module proxy's case encoding: an upper-case letter
// becomes '!' and its lower-case form (github.com/Masterminds ->
// github.com/!masterminds).
func escapeModulePath(path string) string {
	var b strings.Builder
	for _, r := range path {
		if 'A' <= r && r <= 'Z' {
			b.WriteByte('!')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}
