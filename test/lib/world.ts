// The tests build the same world a user's tryout builds (examples/lib-world.ts): one definition.
export { buildWorld, type World, type WorldOptions } from '../../examples/lib-world.js';
