// Package cache is swarmfs's piece store: verified pieces kept in badger under
// a capacity limit, least recently read first out, surviving restarts and
// crashes. It knows bytes and keys, not torrents.
package cache
