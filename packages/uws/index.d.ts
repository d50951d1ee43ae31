declare const uws: any;
export = uws;
