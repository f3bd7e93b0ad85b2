export declare const BUILT_REDOC_BUNDLE: string;
/** Looks for Redoc's standalone bundle in the node_modules directories above `from`, then for the build's copy. */
export declare function findRedocBundle(from?: string): string | undefined;
