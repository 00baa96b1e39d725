/** What machine the figures come from. */
import { cpus, loadavg, totalmem, availableParallelism, platform, release } from "node:os";

export interface MachineInfo {
  cpu: string;
  cores: number;
  memoryGiB: number;
  node: string;
  os: string;
  /** 1-minute load average when the run started and ended (other work on the machine). */
  loadAtStart: number;
  loadAtEnd?: number;
  date: string;
}

export function machineInfo(): MachineInfo {
  const list = cpus();
  return {
    cpu: `${list[0]?.model.trim() ?? "unknown"}${list[0]?.speed ? ` @ ${list[0].speed} MHz` : ""}`,
    cores: availableParallelism(),
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    os: `${platform()} ${release()}`,
    loadAtStart: loadavg()[0] ?? 0,
    date: new Date().toISOString(),
  };
}

export function currentLoad(): number {
  return loadavg()[0] ?? 0;
}
