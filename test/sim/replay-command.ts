/** The one-line command that replays a seed with its schedule and trace. */
export const replayCommand = (seed: number): string => `npm run test:sim -- --seed ${seed} --verbose`;
