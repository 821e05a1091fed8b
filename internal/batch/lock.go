package batch

import "errors"

// LockFile is the file a run holds locked in its output directory (see
// lockDir).
const LockFile = ".wxacode.lock"

// errLocked says another live run holds the directory.
var errLocked = errors.New("is in use by another wxacode batch run")
