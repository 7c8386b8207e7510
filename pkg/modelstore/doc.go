// Package modelstore keeps the models of one type (llm or diffusion) on the
// local disk and downloads them.
//
// Layout under the data directory:
//
//	models/<type>/<id>/model.json    the metadata record, written atomically
//	models/<type>/<id>/<file>        the model files (one, several shards, or
//	                                 the named parts of a diffusion model)
//	models/<type>/<id>/<file>.partial       an interrupted download
//	models/<type>/<id>/<file>.partial.json  its resume validators
//
// A model exists once its record exists; List, Get, Delete, Verify and
// StorageUsage read the disk on every call, so they never serve a stale cache.
// Downloads resume with HTTP Range requests only under a strong validator (a
// strong ETag sent as If-Range, or a known sha256 checked at the end; never
// Last-Modified alone), check sha256 sums, check free disk space first (keeping
// a reserve: Options.MinFreeBytes, by default 5 % of the volume, at most 1 GiB),
// remove the partial file of a download that filled the disk, and make final
// files appear only by an atomic rename. Each engine service owns one Store for its type, so two processes
// never write the same directory.
//
// Every file of the store is reached through an os.Root opened on
// models/<type>: no operation follows a symbolic link out of the store. Reading
// through such a link (Verify, Get, reuse of a finished file) fails with
// ErrOutsideStore; where the store writes, a planted link is replaced (removed
// or renamed over), never written through.
package modelstore
