// Emits two data messages itself (awaiting each emit), then returns nothing.
exports.process = async function process(msg) {
    await this.emit('data', { data: { n: 1, input: msg.data }, metadata: msg.metadata || {}, attachments: {} });
    await this.emit('data', { data: { n: 2, input: msg.data }, metadata: msg.metadata || {}, attachments: {} });
};
