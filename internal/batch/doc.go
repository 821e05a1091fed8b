// Package batch is the engine behind "wxacode batch": it mints a code for
// every row of an input into an output directory, within a rate limit,
// crash-safe and resumable. The command parses its flags into a Config,
// calls Run, and prints the Summary; everything else is here.
//
// A run has four steps, each in a file of its own:
//
//  1. prepare (run.go): make sure the directory takes files, lock it
//     (lock_unix.go), remove our temporary files, read the manifest
//     (manifest.go: what made each image already there);
//  2. plan (input.go, plan.go): read the input a record at a time and
//     turn rows into jobs: duplicates dropped, rows of one request
//     grouped, bad scenes and clashing names failed locally, images
//     already made for the same request and origin skipped. Nothing is
//     sent before the whole input is read;
//  3. mint (worker.go, quota.go, progress.go): workers take jobs, wait
//     out quota pauses, mint or copy each code and write it under each of
//     its names (files.go), a manifest line after each image;
//  4. finish (run.go): close the manifest, write failures.csv, count.
//
// Time comes from Config.Clock and memory is capped through
// Config.SetMemoryLimit, so that tests control both; the package holds no
// state of its own between runs.
package batch
