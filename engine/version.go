package engine

// Version is swarmfs's version, sent in the extension handshake.
const Version = "0.1.0"
