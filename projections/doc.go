// Package projections holds agentwatch's read models, one package each
// (executionindex, agentstats, stuck), and Model, which folds journal events through
// all three in memory.
//
// Every read model is a pure function of the session aggregates (domain.Session), which
// depend only on the set of events applied. That is what makes the read models
// identical whatever the duplication and interleaving of the feeds. Nothing here does
// I/O; the app layer loads and stores through the ports each package declares.
package projections
