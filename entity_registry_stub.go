package reprise

// hasEntity reports whether the App runs entities of the name. Until the App registers Go
// entities (the entities branch), it has none, so every name is accepted, as for an App whose
// entities run in gRPC workers.
//
// TEMPORARY: delete this file when merging the branch that defines App.hasEntity.
func (a *App) hasEntity(name string) bool { return true }
