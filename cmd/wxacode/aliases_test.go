package main

import "github.com/go-wxacode/wxacode/internal/batch"

// The engine's names the command's tests use.
const (
	manifestFile = batch.ManifestFile
	failuresFile = batch.FailuresFile
	lockFile     = batch.LockFile
)

var fileBase = batch.FileBase
