// Always fails with an error naming the input's `reason`.
exports.process = async function process(msg) {
    throw new Error(`twin failure: ${msg.data.reason || 'none'}`);
};
