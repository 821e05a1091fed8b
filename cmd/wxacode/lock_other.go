//go:build !unix

package main

import "errors"

// lockFile is the file a batch holds locked in its output directory.
const lockFile = ".wxacode.lock"

// errLocked says another live run holds the directory.
var errLocked = errors.New("is in use by another wxacode batch run")

// lockDir does not lock on systems without flock(2): two runs into one
// directory are then the user's to avoid.
func lockDir(string) (func(), error) { return func() {}, nil }
