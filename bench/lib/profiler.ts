/** Records a V8 CPU profile of this process around one piece of work (node:inspector). */
import { Session } from "node:inspector/promises";
import { writeFileSync } from "node:fs";

export async function profileDuring<T>(file: string, work: () => Promise<T>, samplingIntervalUs = 100): Promise<T> {
  const session = new Session();
  session.connect();
  await session.post("Profiler.enable");
  await session.post("Profiler.setSamplingInterval", { interval: samplingIntervalUs });
  await session.post("Profiler.start");
  try {
    return await work();
  } finally {
    const { profile } = await session.post("Profiler.stop");
    writeFileSync(file, JSON.stringify(profile));
    session.disconnect();
  }
}
