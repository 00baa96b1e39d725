import { suite } from "uvu";
import * as assert from "uvu/assert";
import { SessionTracker } from "../../src/session-tracker.js";

const tracker = suite("session-tracker");

tracker("lists a project while at least one session holds it", () => {
  const t = new SessionTracker();
  t.connect("p1");
  t.connect("p1");
  assert.equal([...t.connectedProjectIds()], ["p1"]);
  assert.is(t.sessionCount("p1"), 2);
  t.disconnect("p1");
  assert.equal([...t.connectedProjectIds()], ["p1"]);
  t.disconnect("p1");
  assert.equal([...t.connectedProjectIds()], []);
  assert.is(t.sessionCount("p1"), 0);
});

tracker("lists each project once, in first-connect order", () => {
  const t = new SessionTracker();
  for (const id of ["b", "a", "b", "c", "a"]) t.connect(id);
  assert.equal([...t.connectedProjectIds()], ["b", "a", "c"]);
  assert.is(t.size, 3);
});

tracker("ignores a disconnect below zero", () => {
  const t = new SessionTracker();
  t.disconnect("ghost");
  t.connect("p");
  t.disconnect("p");
  t.disconnect("p");
  t.connect("p");
  assert.is(t.sessionCount("p"), 1);
  assert.is(t.size, 1);
});

tracker("ignores empty project ids", () => {
  const t = new SessionTracker();
  t.connect("");
  t.disconnect("");
  assert.is(t.size, 0);
  assert.equal([...t.connectedProjectIds()], []);
});

tracker("connectedProjectIds is a snapshot that later changes do not affect", () => {
  const t = new SessionTracker();
  t.connect("p1");
  const ids = t.connectedProjectIds();
  t.connect("p2");
  t.disconnect("p1");
  assert.equal([...ids], ["p1"]);
});

tracker.run();
