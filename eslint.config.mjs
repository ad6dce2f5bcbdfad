// Lint: ESLint's and typescript-eslint's recommended rules; layout is Prettier's (.prettierrc.json).
import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/", ".work/", "node_modules/", "sdk/python/", "**/*.js", "**/*.mjs"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      // A leading underscore says "unused on purpose" (a parameter an interface gives, a key left out of a rest).
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_", destructuredArrayIgnorePattern: "^_", caughtErrorsIgnorePattern: "^_" },
      ],
      // The kinds list holds kinds of every props type (Kind<any>), and mixin constructors take any[]: TypeScript's own idioms.
      "@typescript-eslint/no-explicit-any": "off",
    },
  },
  {
    // Tests load modules at run time under jest's mocks, and fixtures declare what a module looked like.
    files: ["test/**/*.ts"],
    rules: { "@typescript-eslint/no-require-imports": "off" },
  },
);
