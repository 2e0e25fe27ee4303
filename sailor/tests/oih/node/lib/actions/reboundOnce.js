// Asks for the message to be retried later.
exports.process = async function process() {
    await this.emit('rebound', 'not yet');
};
