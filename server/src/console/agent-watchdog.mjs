// Preloaded (`node --import`) into a console proxy agent that a management node spawned (console/launch.ts). The
// node holds the write end of our stdin; when the node goes away, even killed with no chance to stop its children,
// stdin ends and the agent exits, so no orphan keeps holding the console proxy port.
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
