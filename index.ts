// Entry point of the clicky-delivery Pulumi program: `pulumi up --stack <staging|production>`.
// All the work is in src/program.ts; the exported promise becomes the stack outputs.
import { program } from "./src/program";

export = program();
