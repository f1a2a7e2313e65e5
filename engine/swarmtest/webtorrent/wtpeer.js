// wtpeer.js runs one WebTorrent client (the webtorrent npm package, an
// independent JavaScript implementation of BitTorrent) for swarmtest's
// WebTorrent type (../webtorrent.go), on one torrent, over TCP, with no
// DHT, trackers, LSD, uTP or web seeds: it meets only the peers a test
// tells it of or that dial it.
//
// Usage: node wtpeer.js '{"ip":"127.0.0.2","port":6881,"source":"x.torrent or magnet:...","dir":"DIR"}'
//
// It listens on ip:port and dials from ip (WebTorrent itself would listen
// on every address and dial from any) and then answers commands on stdin, one a line, with one JSON object a
// line on stdout:
//
//	status       {"listening":true,"ready":true,"done":false,"downloaded":N,"uploaded":N,"peers":N,"error":""}
//
// Errors and warnings also go to stderr, which the test keeps.
'use strict'

const fs = require('fs')
const net = require('net')
const readline = require('readline')

const opts = JSON.parse(process.argv[2])

// Every server WebTorrent starts listens on opts.ip only, and its
// connections go out from it.
const listen = net.Server.prototype.listen
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === 'number') {
    const cb = args.find(a => typeof a === 'function')
    return listen.call(this, { port: args[0], host: opts.ip }, cb)
  }
  return listen.apply(this, args)
}
const connect = net.connect
net.connect = net.createConnection = function (o, ...rest) {
  if (o !== null && typeof o === 'object' && !o.localAddress) o = { ...o, localAddress: opts.ip }
  return connect.call(this, o, ...rest)
}

const WebTorrent = require('webtorrent')

const state = { listening: false, error: '' }
const fail = what => e => {
  const msg = String((e && e.message) || e)
  process.stderr.write(what + ': ' + msg + '\n')
  if (what !== 'warning') state.error = msg
}

const client = new WebTorrent({
  dht: false, tracker: false, lsd: false, webSeeds: false, utp: false,
  torrentPort: opts.port
})
client.on('error', fail('client error'))
client.on('listening', () => { state.listening = true })

const source = opts.source.startsWith('magnet:') ? opts.source : fs.readFileSync(opts.source)
const torrent = client.add(source, { path: opts.dir })
torrent.on('error', fail('torrent error'))
torrent.on('warning', fail('warning'))
torrent.on('wire', (wire, addr) => process.stderr.write('wire ' + addr + '\n'))

const out = o => process.stdout.write(JSON.stringify(o) + '\n')
readline.createInterface({ input: process.stdin }).on('line', line => {
  const cmd = line.trim()
  switch (cmd) {
    case 'status':
      out({
        listening: state.listening,
        ready: torrent.ready === true,
        done: torrent.done === true,
        downloaded: torrent.downloaded || 0,
        uploaded: torrent.uploaded || 0,
        peers: torrent.numPeers || 0,
        error: state.error
      })
      break
    default:
      out({ error: 'unknown command ' + JSON.stringify(cmd) })
  }
}).on('close', () => client.destroy(() => process.exit(0)))
