// The test writes here a program declaring exactly the resources `pulumi import` read: each with the inputs
// the import put in state (from which the engine generates code), on the native provider's classes
// (pulumi-netns/native), configured through the stack's netns:host, netns:privateKey and netns:hostKey.
export {};
