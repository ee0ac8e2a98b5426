// A WebSocket server for tagwire's end-to-end tests, built on Node's `ws`.
// Same protocol as ws_server.py: "C <path>", "B <payload>" / "T <payload>" lines in
// --out, "READY <port>" on stdout. `ws` answers pings itself.
const fs = require('fs');
const { WebSocketServer } = require('ws');

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const out = fs.openSync(args.out, 'a');
// --deflate 1 accepts permessage-deflate (off by default in `ws` servers).
const wss = new WebSocketServer({
  host: '127.0.0.1',
  port: Number(args.port || 0),
  perMessageDeflate: args.deflate === '1',
});
wss.on('listening', () => console.log(`READY ${wss.address().port}`));
wss.on('connection', (ws, req) => {
  fs.writeSync(out, `C ${req.url}\n`);
  if (ws.extensions) fs.writeSync(out, `E ${ws.extensions}\n`);
  ws.on('message', (data, isBinary) => {
    fs.writeSync(out, `${isBinary ? 'B' : 'T'} ${data.toString('utf8')}\n`);
  });
});
