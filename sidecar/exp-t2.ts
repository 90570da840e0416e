import { writeTestModels } from "./src/models/test-models/index.js";
import { getLlama, LlamaLogLevel } from "node-llama-cpp";
const models = await writeTestModels("/tmp/exp/models");
const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.info });
const rr = await llama.loadModel({ modelPath: models[2]!.path });
const rctx = await rr.createRankingContext({ contextSize: 2048, threads: 1 });
console.log("rank", await rctx.rankAll("what is a cat", ["a cat is an animal", "stock markets fell", "cats"]));
