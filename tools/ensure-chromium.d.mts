/** The path of the `chromium` executable, installed with apt-get first when it is missing (root only). */
export declare function ensureChromium(): string;
