// The in-memory twins of the LevelDB adapters meet the log's ports (the LevelDB ones: ports.int.test.ts).
import { memoryLogPorts, runLogPortConformance } from './testing.js';

runLogPortConformance('MemoryEventStore + MemoryStorageAdapter', memoryLogPorts);
