// Package durable makes changes to directories survive a power loss: a file's data is fsynced before it is
// named, and a directory is fsynced after an entry in it is created, renamed or removed. Without the second,
// a file system that does not order its metadata may lose the new name (or keep the removed one) after a
// crash, even though the file's data was synced.
package durable

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// SyncDir fsyncs the directory dir, making its entries' creation, renaming and removal durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// MkdirAll is os.MkdirAll that also makes every directory it created durable in its parent.
func MkdirAll(path string, perm fs.FileMode) error {
	path = filepath.Clean(path)
	var created []string
	for p := path; ; p = filepath.Dir(p) {
		if _, err := os.Stat(p); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		created = append(created, p)
		if filepath.Dir(p) == p {
			break
		}
	}
	if err := os.MkdirAll(path, perm); err != nil {
		return err
	}
	// Deepest first: each new directory's entry is made durable in its parent.
	for _, p := range created {
		if err := SyncDir(filepath.Dir(p)); err != nil {
			return err
		}
	}
	return nil
}

// WriteFile writes data to a new file at path, fsyncs it, and makes its name durable in its directory.
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return SyncDir(filepath.Dir(path))
}

// Remove removes path, if it exists, and makes the removal durable in its directory.
func Remove(path string) error {
	if err := os.Remove(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	return SyncDir(filepath.Dir(path))
}
