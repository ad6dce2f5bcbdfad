/**
 * Serves the native provider over gRPC through @pulumi/pulumi's own provider server, which does the
 * resource methods (and construct) but, in 3.248, drops the provider's configuration: its Configure
 * ignores the request and CheckConfig/DiffConfig are unimplemented. And its Read fails on the request
 * `pulumi import` sends, which has an id and no properties. So these four methods are put on the service
 * before it is registered, on the grpc-js that @pulumi/pulumi itself loads.
 */
import { dirname } from "node:path";
import * as pulumiProvider from "@pulumi/pulumi/provider";
import type { Props } from "../kind";
import { checkConfig, diffConfig, NativeProvider } from "./provider";

type Callback = (error: unknown, response?: unknown) => void;
type Call = { request: any };

const pulumiDir = dirname(require.resolve("@pulumi/pulumi/package.json"));
/* eslint-disable @typescript-eslint/no-require-imports -- @pulumi/pulumi's own gRPC and protobuf modules, untyped, from its install */
const grpc = require(require.resolve("@grpc/grpc-js", { paths: [pulumiDir] }));
const proto = require(require.resolve("@pulumi/pulumi/proto/provider_pb"));
const structProto = require(require.resolve("google-protobuf/google/protobuf/struct_pb", { paths: [pulumiDir] }));
/* eslint-enable @typescript-eslint/no-require-imports */

const toJs = (struct: { toJavaScript(): Props } | undefined): Props => struct?.toJavaScript() ?? {};

/** A handler that answers with what `work` returns (or resolves to), or with its error. */
const handled =
  (work: (request: any) => unknown) =>
  (call: Call, callback: Callback): void => {
    Promise.resolve()
      .then(() => work(call.request))
      .then(
        (response) => callback(null, response),
        (e) => callback(e),
      );
  };

function replacedMethods(provider: NativeProvider) {
  return {
    checkConfig: handled((request) => {
      const response = new proto.CheckResponse();
      // The inputs go back as they came (the engine marks the secret ones again).
      response.setInputs(request.getNews());
      response.setFailuresList(
        checkConfig(toJs(request.getOlds()), toJs(request.getNews())).map((f) => {
          const failure = new proto.CheckFailure();
          failure.setProperty(f.property);
          failure.setReason(f.reason);
          return failure;
        }),
      );
      return response;
    }),
    diffConfig: handled((request) => {
      const olds = toJs(request.getOldInputs() ?? request.getOlds());
      const result = diffConfig(olds, toJs(request.getNews()));
      const response = new proto.DiffResponse();
      response.setChanges(result.changes ? proto.DiffResponse.DiffChanges.DIFF_SOME : proto.DiffResponse.DiffChanges.DIFF_NONE);
      response.setReplacesList(result.replaces);
      response.setDeletebeforereplace(result.deleteBeforeReplace);
      return response;
    }),
    read: handled(async (request) => {
      const result = await provider.read(request.getId(), request.getUrn(), toJs(request.getProperties()));
      const response = new proto.ReadResponse();
      response.setId(result.id);
      response.setProperties(structProto.Struct.fromJavaScript(result.props));
      if (result.inputs) response.setInputs(structProto.Struct.fromJavaScript(result.inputs));
      return response;
    }),
    configure: handled((request) => {
      const args: Props = request.getArgs() ? toJs(request.getArgs()) : variablesOf(request.getVariablesMap());
      provider.configure(args);
      const response = new proto.ConfigureResponse();
      response.setAcceptsecrets(true);
      response.setAcceptresources(true);
      response.setAcceptoutputs(true);
      return response;
    }),
  };
}

/** An older engine's configuration: `netns:config:KEY` → value (objects as JSON text). */
function variablesOf(map: { forEach(f: (value: string, key: string) => void): void }): Props {
  const vars: Props = {};
  map.forEach((value, key) => (vars[key.split(":").pop()!] = value));
  return vars;
}

export function serve(provider: NativeProvider, args: string[]): Promise<void> {
  const addService = grpc.Server.prototype.addService;
  grpc.Server.prototype.addService = function (service: unknown, implementation: Record<string, unknown>) {
    grpc.Server.prototype.addService = addService;
    return addService.call(this, service, Object.assign(implementation, replacedMethods(provider)));
  };
  return pulumiProvider.main(provider as unknown as pulumiProvider.Provider, args);
}
