// Preloaded (`node --import`) into an agent that a management server spawned: the console proxy agent
// (console/launch.ts) and `npm start`'s simulator agent (simulator-process.ts). The server holds the write end of our
// stdin; when the server goes away, even killed with no chance to stop its children, stdin ends and the agent exits,
// so no orphan keeps holding its port.
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
process.stdin.resume();
